"""dashboard/components.py: every grid, chart config and error panel is set up one way."""

from __future__ import annotations

from torchscope.dashboard import components

COLUMNS = [{"field": "name"}, {"field": "total_us"}, {"field": "links"}]


def _rows(n: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"op{i}", "total_us": float(i), "links": ""} for i in range(n)]


def test_a_plain_grid_grows_with_its_rows_and_sorts_filters_resizes() -> None:
    grid = components.data_grid("g", _rows(3), COLUMNS)
    assert grid.id == "g" and grid.getRowId == "params.data.id" and grid.className == "ag-theme-alpine"
    assert grid.defaultColDef == {"sortable": True, "filter": True, "resizable": True}
    assert grid.dashGridOptions == {"animateRows": False, "tooltipShowDelay": 300, "domLayout": "autoHeight"}
    assert not hasattr(grid, "style") or grid.style is None


def test_a_paged_grid_has_a_fixed_height_and_exports_chosen_columns() -> None:
    grid = components.data_grid("g", _rows(3), COLUMNS, row_id="row", page_size=50, height=620,
                                floating_filters=True, csv_file="p_ops.csv", csv_columns=["name", "total_us"],
                                class_name="prof-grid")  # fmt: skip
    assert grid.getRowId == "params.data.row" and grid.className == "ag-theme-alpine prof-grid"
    assert grid.defaultColDef["floatingFilter"] is True
    assert grid.dashGridOptions == {"animateRows": False, "tooltipShowDelay": 300, "pagination": True,
                                    "paginationPageSize": 50}  # fmt: skip
    assert grid.style == {"height": "620px"}
    assert grid.csvExportParams == {"fileName": "p_ops.csv", "columnKeys": ["name", "total_us"]}


def test_a_shrinking_grid_pages_only_when_its_rows_do_not_fit_one_page() -> None:
    small = components.data_grid("g", _rows(20), COLUMNS, page_size=20, height=640, shrink=True)
    assert small.dashGridOptions["domLayout"] == "autoHeight" and "pagination" not in small.dashGridOptions
    large = components.data_grid("g", _rows(21), COLUMNS, page_size=20, height=640, shrink=True)
    assert large.dashGridOptions["pagination"] is True and large.style == {"height": "640px"}
    assert "domLayout" not in large.dashGridOptions


def test_grid_options_add_to_the_defaults() -> None:
    grid = components.data_grid("g", [], COLUMNS, options={"rowSelection": {"mode": "multiRow"}})
    assert grid.dashGridOptions["rowSelection"] == {"mode": "multiRow"}
    assert grid.dashGridOptions["domLayout"] == "autoHeight"


def test_plot_config_hides_the_logo_under_any_extra_setting() -> None:
    assert components.plot_config() == {"displaylogo": False}
    assert components.plot_config(scrollZoom=True) == {"displaylogo": False, "scrollZoom": True}


def test_error_panel_shows_the_code_and_links_home() -> None:
    panel = str(components.error_panel(404, "no run 9"))
    assert "404" in panel and "no run 9" in panel and "href='/'" in panel
