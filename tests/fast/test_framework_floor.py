"""The benchmark's no-op endpoint (config/framework_floor.py) exists only where the bench
turns it on, and `check --deploy` says so when it is on."""

from tests.support.settings_probe import in_fresh_process

PROBE = (
    "from django.urls import Resolver404, resolve\n"
    "from config.framework_floor import check_floor_endpoint_is_off\n"
    "try:\n    mounted = resolve('/bench/floor').url_name\nexcept Resolver404:\n    mounted = None\n"
    "result = [mounted, [w.id for w in check_floor_endpoint_is_off()]]"
)


def test_the_floor_endpoint_is_not_mounted_by_default(tmp_path):
    assert in_fresh_process(tmp_path, {"FRAMEWORK_FLOOR_ENDPOINT": ""}, PROBE) == [None, []]


def test_the_floor_endpoint_mounted_for_the_bench_is_a_deploy_warning(tmp_path):
    assert in_fresh_process(tmp_path, {"FRAMEWORK_FLOOR_ENDPOINT": "1"}, PROBE) == ["framework-floor", ["config.W001"]]


def test_the_floor_answers_a_post_with_202_and_nothing_written(api, transactional_db, settings):
    from django.urls import clear_url_caches, path

    from config import urls
    from config.framework_floor import FrameworkFloorApi
    from orders.models import Order

    floor = path("bench/floor", FrameworkFloorApi.as_view())
    urls.urlpatterns.append(floor)
    clear_url_caches()
    try:
        answer = api.post("/bench/floor", {"email": "shopper@example.com"}, format="json")
    finally:
        urls.urlpatterns.remove(floor)
        clear_url_caches()

    assert answer.status_code == 202
    assert answer.json() == {}
    assert Order.objects.count() == 0
