"""Scraping /metrics in this process (Django's test client), as Prometheus does."""

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "s3cret-metrics-token"


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample /metrics exposes, by (name, labels)."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
