import reflex as rx

config = rx.Config(
    app_name="showcase",
    plugins=[rx.plugins.RadixThemesPlugin()],
    # The sitemap needs a deploy_url and means nothing under a mount.
    disable_plugins=[rx.plugins.SitemapPlugin],
)
