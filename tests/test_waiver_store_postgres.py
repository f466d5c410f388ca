"""The waivers table on the real PostgreSQL server the store tests start."""
import pytest

from test_waiver_store import check_round_trip

pytest.importorskip("psycopg", reason="pip install 'vfio-conform[postgres]'")
pytestmark = pytest.mark.xdist_group("postgres")


def test_waivers_round_trip_in_postgres(pg_server, tmp_path):
    check_round_trip(pg_server("waivers_a"), pg_server("waivers_b"))
    check_round_trip(pg_server("waivers_c"), str(tmp_path / "back.sqlite"))
