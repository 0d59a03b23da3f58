"""Pure figure builders: rows in, plotly figures out. No store, no Dash callbacks."""
