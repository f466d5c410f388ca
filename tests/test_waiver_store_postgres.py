"""The waivers table on the real PostgreSQL server the store tests start."""
from test_store_postgres import pg_server, pytestmark  # noqa: F401  (fixture and skip marks)
from test_waiver_store import check_round_trip


def test_waivers_round_trip_in_postgres(pg_server, tmp_path):  # noqa: F811
    check_round_trip(pg_server("waivers_a"), pg_server("waivers_b"))
    check_round_trip(pg_server("waivers_c"), str(tmp_path / "back.sqlite"))
