"""Asymmetric trust in the remote tier, against a real S3 API (moto's server).

Ed25519 keys made by ``reflex-buildd keygen``; trust namespaces (pull
requests build into ``pr-7``, the main CI promotes into ``main``); a host that
holds only public keys serves what was promoted and refuses everything else:
an untrusted signer, a namespace it does not read, a manifest replayed under
another key or namespace, a stripped signature. It never pushes. Rotation,
promotion refusals, and misconfiguration refused at startup in one line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import stat
import time
import urllib.request
from pathlib import Path
from typing import Any

import blake3
import obstore
import pytest
from obstore.store import S3Store

from conftest import SHOWCASE, Built, run_cli, run_host
from reflex_buildd.promote import PromoteRequest, check_recipe, promote
from reflex_buildd.push import push_artifact
from reflex_buildd_client.cache.manifest import Manifest
from reflex_buildd_client.cache.store import Artifact, Cache
from reflex_buildd_client.errors import (
    InvalidConfigError,
    PushRefusedError,
    UntrustedArtifactError,
)
from reflex_buildd_client.keys.schema import KeyInputs, key_of
from reflex_buildd_client.remote.bucket import RemoteSettings, manifest_object, remote_settings
from reflex_buildd_client.remote.keyfiles import SigningKey, generate_key_pair
from reflex_buildd_client.remote.pull import pull
from reflex_buildd_client.settings import Settings

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def aws(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name.startswith("REFLEX_BUILDD_") and name != "REFLEX_BUILDD_CACHE_DIR":
            monkeypatch.delenv(name)
    return s3


@pytest.fixture
def artifact(showcase_build: Built, cache_dir: Path) -> Artifact:
    found = Cache(cache_dir).open(showcase_build.key)
    assert found is not None
    return found


@dataclasses.dataclass(frozen=True)
class Keys:
    pr: SigningKey
    main: SigningKey
    other: SigningKey


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    root = tmp_path_factory.mktemp("keys")
    return Keys(*(generate_key_pair(root / name) for name in ("pr", "main", "other")))


_prefixes = iter(range(1_000_000))


def _url(s3: Any) -> str:
    return s3.url(f"trust{next(_prefixes)}")


def _remote(url: str, **kw: str) -> RemoteSettings:
    settings = remote_settings(url, allow_http=True, **kw)  # type: ignore[arg-type]
    assert settings is not None
    return settings


def _builder(url: str, key: SigningKey, namespace: str) -> RemoteSettings:
    return _remote(url, signing_key_file=key.source, namespace_name=namespace)


def _host(url: str, *trusted: SigningKey, reads: str = "main") -> RemoteSettings:
    """A host: public keys only, reading ``reads``."""
    return _remote(
        url, trusted_keys=",".join(k.source + ".pub" for k in trusted), read_namespaces=reads
    )


def _raw(s3: Any, settings: RemoteSettings, namespace: str) -> S3Store:
    """Direct write access to one namespace's folder (an attacker, or another CI role)."""
    return S3Store(
        s3.bucket,
        prefix=f"{settings.prefix}/{namespace}",
        endpoint=s3.endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        client_options={"allow_http": True},
    )


def _objects(s3: Any, settings: RemoteSettings) -> list[str]:
    raw = S3Store(
        s3.bucket,
        prefix=settings.prefix,
        endpoint=s3.endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        client_options={"allow_http": True},
    )
    return sorted(str(m["path"]) for chunk in obstore.list(raw) for m in chunk)


def _nothing_installed(cache: Cache, key: str) -> None:
    assert cache.open(key) is None and not cache.artifact_dir(key).exists()


# -- keys and settings ----------------------------------------------------------


def test_keygen_writes_a_private_key_0600_and_its_public_key(tmp_path: Path) -> None:
    result = run_cli("keygen", str(tmp_path / "ci"), "--json", cache_dir=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    private, public = tmp_path / "ci", tmp_path / "ci.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"OPENSSH PRIVATE KEY" in private.read_bytes()
    line = public.read_text()
    assert line.startswith("ssh-ed25519 ") and "PRIVATE" not in line
    # The fingerprint printed is the one ssh-keygen -l shows, and the one settings name.
    loaded = _remote("s3://b/p", trusted_keys=str(public)).trusted_keys
    assert made["fingerprint"] == loaded[0].fingerprint and made["public"] == str(public)
    # Never over an existing file, never through a link (not even a dangling one).
    again = run_cli("keygen", str(private), cache_dir=tmp_path / "c")
    assert again.returncode != 0 and "exists" in again.stderr
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    linked = run_cli("keygen", str(tmp_path / "link"), cache_dir=tmp_path / "c")
    assert linked.returncode != 0 and not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFLEX_BUILDD_TRUSTED_KEYS": "{main}"}, "holds a PRIVATE key"),
        ({"REFLEX_BUILDD_SIGNING_KEY_FILE": "{main}.pub"}, "not a private key"),
        ({"REFLEX_BUILDD_TRUSTED_KEYS": "{missing}"}, "cannot read"),
        ({"REFLEX_BUILDD_REMOTE_NAMESPACE": "../main"}, "REFLEX_BUILDD_REMOTE_NAMESPACE"),
        ({"REFLEX_BUILDD_REMOTE_NAMESPACE": "a/b"}, "one path segment"),
        ({"REFLEX_BUILDD_READ_NAMESPACES": "main,v1"}, "REFLEX_BUILDD_READ_NAMESPACES"),
        (
            {"REFLEX_BUILDD_SIGNING_KEY": "h" * 32, "REFLEX_BUILDD_SIGNING_KEY_FILE": "{main}"},
            "use one kind of key",
        ),
    ],
)
def test_misconfiguration_is_refused_at_startup_in_one_line(
    keys: Keys, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    values = {
        name: value.format(main=keys.main.source, missing=tmp_path / "nope.pub")
        for name, value in env.items()
    }
    environ = {"REFLEX_BUILDD_REMOTE": "s3://b/p", **values}
    with pytest.raises(InvalidConfigError, match=message) as caught:
        Settings.load(environ=environ, cache_dir=tmp_path)
    assert "\n" not in str(caught.value)
    result = run_cli("status", cache_dir=tmp_path / "c", **values, REFLEX_BUILDD_REMOTE="s3://b/p")
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"error: {caught.value}"
    ]


def test_repr_and_status_name_fingerprints_never_secrets(
    aws: Any, keys: Keys, tmp_path: Path
) -> None:
    url = _url(aws)
    secret = Path(keys.main.source).read_text()
    settings = _remote(url, signing_key_file=keys.main.source, trusted_keys=keys.pr.source + ".pub")
    assert keys.main.fingerprint in repr(settings) and secret not in repr(settings)
    result = run_cli(
        "status",
        cache_dir=tmp_path / "c",
        **aws.env(),
        REFLEX_BUILDD_REMOTE=url,
        REFLEX_BUILDD_SIGNING_KEY_FILE=keys.main.source,
        REFLEX_BUILDD_TRUSTED_KEYS=keys.pr.source + ".pub",
        REFLEX_BUILDD_REMOTE_NAMESPACE="main",
        REFLEX_BUILDD_READ_NAMESPACES="main,pr-7",
    )
    assert result.returncode == 0, result.stderr
    assert "namespaces: pushes into main, reads main, pr-7" in result.stdout
    assert (
        f"trust: verifies Ed25519 by {keys.pr.fingerprint}; signs Ed25519 {keys.main.fingerprint}"
        in result.stdout
    )
    assert "PRIVATE" not in result.stdout + result.stderr


# -- the fleet: pr-7 builds, main promotes, hosts read main -----------------------


def test_host_with_public_keys_serves_a_promoted_artifact(
    aws: Any, keys: Keys, artifact: Artifact, showcase_build: Built, tmp_path: Path
) -> None:
    url = _url(aws)
    push_artifact(Cache(tmp_path / "pr"), artifact, _builder(url, keys.pr, "pr-7"))
    host = _host(url, keys.main)
    assert pull(Cache(tmp_path / "early"), host, artifact.key) is None  # only in pr-7
    # The main CI: trusts the PR builders' key for pr-7, signs with its own for main.
    promoter = _remote(url, signing_key_file=keys.main.source, trusted_keys=keys.pr.source + ".pub")
    report = promote(
        Cache(tmp_path / "promoter"), promoter, PromoteRequest(artifact.key, "pr-7", "main")
    )
    assert report.manifest_written and report.namespace == "main"
    # A real host process, public keys only, policy fail: it serves the promoted build.
    cache = tmp_path / "host"
    with run_host(
        "examples.hosts.fastapi_host:app",
        cache_dir=cache,
        log_dir=tmp_path,
        **aws.env(),
        REFLEX_BUILDD_REMOTE=url,
        REFLEX_BUILDD_TRUSTED_KEYS=keys.main.source + ".pub",
        REFLEX_BUILDD_POLICY="fail",
        SHOWCASE_PROJECT=str(SHOWCASE),
        SHOWCASE_MOUNT_PATH="/admin",
        REFLEX_UPLOADED_FILES_DIR=str(tmp_path / "uploads"),
        REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
    ) as served:
        with urllib.request.urlopen(served.url + "/admin/", timeout=10) as resp:
            assert resp.status == 200 and b"Showcase" in resp.read()
    installed = Cache(cache).open(showcase_build.key)
    assert installed is not None and installed.manifest == artifact.manifest


def test_host_refuses_an_untrusted_signer_and_says_whom_it_saw(
    aws: Any, keys: Keys, artifact: Artifact, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = _url(aws)
    push_artifact(Cache(tmp_path / "pr"), artifact, _builder(url, keys.pr, "main"))
    host, cache = _host(url, keys.main, keys.other), Cache(tmp_path / "host")
    with caplog.at_level(logging.ERROR, "reflex_buildd"):
        with pytest.raises(UntrustedArtifactError) as caught:
            pull(cache, host, artifact.key)
    message = str(caught.value)
    assert f"signed by {keys.pr.fingerprint}" in message
    assert f"{keys.main.fingerprint}, {keys.other.fingerprint}" in message
    lines = [r.getMessage() for r in caplog.records if artifact.key in r.getMessage()]
    assert len(lines) == 1 and keys.pr.fingerprint in lines[0], lines
    _nothing_installed(cache, artifact.key)


def test_host_does_not_read_other_namespaces(
    aws: Any, keys: Keys, artifact: Artifact, tmp_path: Path
) -> None:
    url = _url(aws)
    # Signed by the very key the host trusts, but in a namespace it does not read.
    push_artifact(Cache(tmp_path / "b"), artifact, _builder(url, keys.main, "staging"))
    assert pull(Cache(tmp_path / "main-only"), _host(url, keys.main), artifact.key) is None
    both = _host(url, keys.main, reads="main,staging")
    assert pull(Cache(tmp_path / "both"), both, artifact.key) is not None


def test_replays_under_another_namespace_or_key_are_refused(
    aws: Any, keys: Keys, artifact: Artifact, tmp_path: Path
) -> None:
    url = _url(aws)
    push_artifact(Cache(tmp_path / "b"), artifact, _builder(url, keys.main, "staging"))
    signed = bytes(
        obstore.get(_raw(aws, _remote(url), "staging"), manifest_object(artifact.key)).bytes()
    )
    # Copied into main (blobs too, so only the signature can tell).
    main = _raw(aws, _remote(url), "main")
    staging = _raw(aws, _remote(url), "staging")
    for entry in artifact.manifest.files.values():
        name = f"v1/blobs/{entry.digest}"
        obstore.put(main, name, bytes(obstore.get(staging, name).bytes()))
    obstore.put(main, manifest_object(artifact.key), signed)
    host, cache = _host(url, keys.main), Cache(tmp_path / "host")
    with pytest.raises(UntrustedArtifactError, match="not for this key and namespace"):
        pull(cache, host, artifact.key)
    _nothing_installed(cache, artifact.key)
    # Under another key of the same namespace: the signature names the key too.
    other_key = "c" * 40
    obstore.put(staging, manifest_object(other_key), signed)
    reader = _host(url, keys.main, reads="staging")
    with pytest.raises(UntrustedArtifactError, match="not for this key and namespace"):
        pull(cache, reader, other_key)
    _nothing_installed(cache, other_key)


def test_stripped_signature_is_refused(
    aws: Any, keys: Keys, artifact: Artifact, tmp_path: Path
) -> None:
    url = _url(aws)
    push_artifact(Cache(tmp_path / "b"), artifact, _builder(url, keys.main, "main"))
    raw = _raw(aws, _remote(url), "main")
    envelope = json.loads(bytes(obstore.get(raw, manifest_object(artifact.key)).bytes()))
    envelope["signature"] = None
    obstore.put(raw, manifest_object(artifact.key), json.dumps(envelope).encode())
    cache = Cache(tmp_path / "host")
    with pytest.raises(UntrustedArtifactError, match="is unsigned; this host trusts only"):
        pull(cache, _host(url, keys.main), artifact.key)
    _nothing_installed(cache, artifact.key)


def test_a_machine_with_only_public_keys_cannot_push(
    aws: Any, keys: Keys, artifact: Artifact, showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    url = _url(aws)
    host = _host(url, keys.main)
    with pytest.raises(PushRefusedError, match="only public keys"):
        push_artifact(Cache(tmp_path), artifact, host)
    assert _objects(aws, host) == []
    env = {
        **aws.env(),
        "REFLEX_BUILDD_REMOTE": url,
        "REFLEX_BUILDD_TRUSTED_KEYS": keys.main.source + ".pub",
    }
    pushed = run_cli("push", showcase_build.key, cache_dir=cache_dir, **env)
    assert pushed.returncode == 2
    assert pushed.stderr.strip().splitlines() == [
        "error: this machine holds only public keys (REFLEX_BUILDD_TRUSTED_KEYS) and no "
        "REFLEX_BUILDD_SIGNING_KEY_FILE: it verifies, it never pushes"
    ]
    # `build` on such a machine builds (here: a local hit) and says, once, that it does not push.
    built = run_cli("build", str(SHOWCASE), cache_dir=cache_dir, **env)
    assert built.returncode == 0, built.stderr
    assert built.stderr.count("not pushed: this machine holds only public keys") == 1
    assert _objects(aws, host) == []


def test_rotation_old_and_new_then_only_new(
    aws: Any, keys: Keys, artifact: Artifact, tmp_path: Path
) -> None:
    url = _url(aws)
    old_key, new_key = artifact.key, _rekeyed(artifact, tmp_path / "v2")
    push_artifact(Cache(tmp_path / "b"), artifact, _builder(url, keys.pr, "main"))
    push_artifact(Cache(tmp_path / "b"), new_key, _builder(url, keys.main, "main"))
    during = _host(url, keys.pr, keys.main)  # old and new trusted
    assert pull(Cache(tmp_path / "h1"), during, old_key) is not None
    assert pull(Cache(tmp_path / "h1"), during, new_key.key) is not None
    after = _host(url, keys.main)  # the old key retired
    with pytest.raises(UntrustedArtifactError, match=re.escape(f"signed by {keys.pr.fingerprint}")):
        pull(Cache(tmp_path / "h2"), after, old_key)
    assert pull(Cache(tmp_path / "h2"), after, new_key.key) is not None


def _rekeyed(artifact: Artifact, root: Path, **settings: str) -> Artifact:
    """The same files under a true key of other inputs (one env value differs), so
    every check but the one under test passes."""
    import shutil

    shutil.copytree(artifact.path, root)
    old = artifact.manifest.inputs
    inputs = KeyInputs(
        files=old.files,
        versions=old.versions,
        js_runtime=old.js_runtime,
        env={**old.env, "VITE_ROTATION_TEST": blake3.blake3(str(root).encode()).hexdigest()},
        settings={**old.settings, **settings},
        schema=old.schema,
    )
    manifest = dataclasses.replace(
        artifact.manifest, key=key_of(inputs), inputs=inputs, created=time.time()
    )
    (root / "manifest.json").write_text(json.dumps(manifest.to_json()))
    return Artifact(root, Manifest.from_json(manifest.to_json()))


# -- promote refuses what fails verification ------------------------------------------


@pytest.mark.parametrize("fault", ["untrusted-signer", "tampered-blob", "other-recipe", "unsigned"])
def test_promote_refuses_an_artifact_that_fails_verification(
    aws: Any, keys: Keys, artifact: Artifact, tmp_path: Path, fault: str
) -> None:
    url = _url(aws)
    subject = artifact
    if fault == "other-recipe":
        subject = _rekeyed(artifact, tmp_path / "recipe", recipe="0" * 64)
    signer = keys.other if fault == "untrusted-signer" else keys.pr
    builder = _builder(url, signer, "pr-7")
    if fault == "unsigned":
        builder = _remote(url, namespace_name="pr-7")
    push_artifact(Cache(tmp_path / "b"), subject, builder)
    if fault == "tampered-blob":
        entry = max(subject.manifest.files.values(), key=lambda e: e.size)
        raw = _raw(aws, _remote(url), "pr-7")
        obstore.delete(raw, f"v1/blobs/{entry.digest}")
        obstore.put(raw, f"v1/blobs/{entry.digest}", b"evil" * (entry.size // 4 + 1))
    promoter = _remote(url, signing_key_file=keys.main.source, trusted_keys=keys.pr.source + ".pub")
    with pytest.raises(UntrustedArtifactError):
        promote(Cache(tmp_path / "promoter"), promoter, PromoteRequest(subject.key, "pr-7", "main"))
    assert not [
        name for name in _objects(aws, promoter) if name.startswith(f"{promoter.prefix}/main/")
    ]


def test_promote_cli_checks_the_checkout_and_needs_both_kinds_of_key(
    aws: Any, keys: Keys, artifact: Artifact, showcase_build: Built, cache_dir: Path, tmp_path: Path
) -> None:
    url = _url(aws)
    push_artifact(Cache(tmp_path / "b"), artifact, _builder(url, keys.pr, "pr-7"))
    env = {**aws.env(), "REFLEX_BUILDD_REMOTE": url}
    args = ("promote", artifact.key, "--from", "pr-7", "--to", "main")
    no_signer = run_cli(
        *args, cache_dir=tmp_path, **env, REFLEX_BUILDD_TRUSTED_KEYS=keys.pr.source + ".pub"
    )
    assert no_signer.returncode == 2 and "REFLEX_BUILDD_SIGNING_KEY_FILE" in no_signer.stderr
    signer = {**env, "REFLEX_BUILDD_SIGNING_KEY_FILE": keys.main.source}
    no_trust = run_cli(*args, cache_dir=tmp_path, **signer)
    assert no_trust.returncode == 2 and "REFLEX_BUILDD_TRUSTED_KEYS" in no_trust.stderr
    trusted = ("--trusted-keys", keys.pr.source + ".pub")
    bad_ns = run_cli(
        "promote",
        artifact.key,
        "--from",
        "pr-7",
        "--to",
        "../main",
        *trusted,
        cache_dir=tmp_path,
        **signer,
    )
    assert bad_ns.returncode == 2 and "--to" in bad_ns.stderr
    ok = run_cli(
        *args, *trusted, "--project", str(SHOWCASE), "--json", cache_dir=tmp_path, **signer
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["namespace"] == "main"
    assert pull(Cache(tmp_path / "host"), _host(url, keys.main), artifact.key) is not None


def test_recipe_check_names_what_differs(artifact: Artifact) -> None:
    check_recipe(artifact.manifest.inputs, artifact.key)
    other = dataclasses.replace(
        artifact.manifest.inputs, settings={**artifact.manifest.inputs.settings, "sentinel": "x"}
    )
    with pytest.raises(UntrustedArtifactError, match="sentinel"):
        check_recipe(other, artifact.key)
