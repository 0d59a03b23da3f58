// plotly.js is an async script of the page (torchscope/dashboard/app.py, CHART_SCRIPTS): it runs while Dash
// fetches the page's content. Until it has run, window.Plotly is a promise of it, which dcc.Graph waits on instead
// of loading plotly.js a second time; plotly.js then replaces it with itself.
if (!window.Plotly) {
    window.Plotly = new Promise(function (resolve) {
        window.torchscopePlotlyLoaded = resolve;
    });
}
