"""deploy/kubernetes agrees with the bot it deploys: probe paths that exist, the port it listens
on, settings it knows and that load together as workload identity, the image's user, and a grace
period that covers the bot's graceful shutdown. (Schemas and security posture are checked by
scripts/check-deploy with kubernetes-validate and checkov.)"""

from __future__ import annotations

import base64
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from dotenv import dotenv_values

from app import create_app
from bot.settings import Settings, SettingsError, documented_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"


def documents() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return documents()


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [bot] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(bot)


def test_every_resource_lives_in_the_bots_namespace(manifests: dict[str, dict[str, Any]]) -> None:
    assert set(manifests) >= {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    namespace = manifests["Namespace"]["metadata"]["name"]
    for kind, document in manifests.items():
        if kind != "Namespace":
            assert document["metadata"]["namespace"] == namespace, kind


def test_probes_and_port_match_the_app(manifests: dict[str, dict[str, Any]]) -> None:
    app = create_app(Settings(), workers=False)
    paths = {r.resource.canonical for r in app.router.routes() if r.method == "GET" and r.resource}
    bot = container(manifests)
    assert bot["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
    assert bot["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
    [port] = bot["ports"]
    assert port["containerPort"] == Settings().port
    assert manifests["ConfigMap"]["data"]["PORT"] == str(Settings().port)
    assert manifests["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]


def test_selectors_find_the_pods(manifests: dict[str, dict[str, Any]]) -> None:
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = manifests[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    assert manifests["Deployment"]["spec"]["replicas"] > 1
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_the_pod_runs_as_the_images_user_read_only(manifests: dict[str, dict[str, Any]]) -> None:
    uid = re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    security = container(manifests)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and security["runAsNonRoot"]
    assert pod["securityContext"]["runAsUser"] == security["runAsUser"] == int(uid.group(1))
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container(manifests)["resources"]
    assert resources["requests"] and resources["limits"]


def test_the_grace_period_covers_the_graceful_shutdown(
    manifests: dict[str, dict[str, Any]],
) -> None:
    """aiohttp's run_app lets requests in flight finish for ``shutdown_timeout`` after SIGTERM;
    preStop waits before that; the workers and the store close after it."""
    shutdown_timeout_s = inspect.signature(web.run_app).parameters["shutdown_timeout"].default
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    pre_stop = " ".join(container(manifests)["lifecycle"]["preStop"]["exec"]["command"])
    sleep = re.search(r"sleep\((\d+)\)", pre_stop)
    assert sleep
    cleanup_margin_s = 10
    assert pod["terminationGracePeriodSeconds"] >= (
        int(sleep.group(1)) + shutdown_timeout_s + cleanup_margin_s
    )


def test_workload_identity_is_wired(manifests: dict[str, dict[str, Any]]) -> None:
    account = manifests["ServiceAccount"]
    annotations = account["metadata"]["annotations"]
    assert {"azure.workload.identity/client-id", "azure.workload.identity/tenant-id"} <= set(
        annotations
    )
    pod = manifests["Deployment"]["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    config = manifests["ConfigMap"]["data"]
    assert config["CREDENTIAL_TYPE"] == "federated-token-file"
    # The app registration is named in the ConfigMap too, not only by the webhook: a pod the
    # webhook missed must not start as the demo.
    assert config["MicrosoftAppId"] == annotations["azure.workload.identity/client-id"]
    assert config["MicrosoftAppTenantId"] == annotations["azure.workload.identity/tenant-id"]


def test_settings_are_known_and_secrets_come_as_a_file(
    manifests: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    config = manifests["ConfigMap"]["data"]
    secret_file = manifests["Secret"]["stringData"][".env"]
    env_path = tmp_path / ".env"
    env_path.write_text(secret_file)
    secret = {k: v for k, v in dotenv_values(env_path).items() if v is not None}
    documented = set(documented_variables())
    assert set(config) <= documented and set(secret) <= documented
    secret_names = {"MicrosoftAppPassword", "TOKEN_CACHE_KEY", "DATABASE_URL", "ADMIN_TOKEN"}
    assert not set(config) & secret_names, "a secret in the ConfigMap"
    bot = container(manifests)
    assert "env" not in bot and all("secretRef" not in source for source in bot["envFrom"])
    [mount] = [m for m in bot["volumeMounts"] if m["name"] == "settings"]
    assert mount["mountPath"] == "/app/.env" and mount["readOnly"]
    # What the pod gets, with the placeholders filled in and the webhook's variables: it loads.
    env_path.write_text(
        secret_file.replace(
            "TOKEN_CACHE_KEY=REPLACE-ME",
            "TOKEN_CACHE_KEY=" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        )
    )
    annotations = manifests["ServiceAccount"]["metadata"]["annotations"]
    webhook = {
        # What the workload identity webhook injects: the service account's annotations.
        "AZURE_CLIENT_ID": annotations["azure.workload.identity/client-id"],
        "AZURE_TENANT_ID": annotations["azure.workload.identity/tenant-id"],
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
    }
    settings = load_settings({**config, **webhook}, env_file=env_path)
    assert settings.effective_credential_type == "federated-token-file"
    assert settings.database_url.startswith("postgresql://") and settings.log_format == "json"
    # The app registration is named in the ConfigMap itself, equal to the annotations.
    assert (settings.app_id, settings.app_tenant_id) == (
        webhook["AZURE_CLIENT_ID"],
        webhook["AZURE_TENANT_ID"],
    )
    assert not settings.demo_mode
    # A pod the webhook missed stops with one line naming the likely cause, not as the demo.
    with pytest.raises(SettingsError, match="workload identity webhook") as caught:
        load_settings(config, env_file=env_path)
    assert "\n" not in str(caught.value)
