import reflex as rx

config = rx.Config(
    app_name="showcase",
    # The sitemap plugin is on by default and warns without a deploy_url.
    disable_plugins=["reflex.plugins.sitemap.SitemapPlugin"],
)
