"""docker-compose.yml is valid and describes the production-like stack the README promises."""
import shutil
import subprocess

import pytest
import yaml

from services.config import ROOT


def compose_command():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed (make test installs docker-compose)")


def test_compose_file_validates_with_docker_compose():
    result = subprocess.run([*compose_command(), "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_stack_has_every_service_with_health_checks_and_named_volumes():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("rabbitmq", "elasticsearch", "postgres", "consultation", "newsfeed", "search", "gateway"):
        assert name in services
    for name in ("rabbitmq", "elasticsearch", "postgres", "gateway"):
        assert "healthcheck" in services[name]
    assert services["gateway"]["ports"] == ["8000:8000"]
    assert services["elasticsearch"]["build"]["context"] == "deploy/elasticsearch"
    assert set(compose["volumes"]) == {"rabbitmq-data", "elasticsearch-data", "postgres-data"}


def test_elasticsearch_image_installs_the_chinese_analysis_plugins():
    dockerfile = (ROOT / "deploy" / "elasticsearch" / "Dockerfile").read_text()
    assert "analysis-smartcn" in dockerfile and "analysis-icu" in dockerfile


def test_application_image_runs_as_a_non_root_user():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "\nUSER balloon" in dockerfile
