// plotly.js for dcc.Graph (torchscope/dashboard/scripts.py). The page loads plotly.js's basic bundle (scatter, bar,
// pie) as a deferred script, run while Dash fetches the page's content; until it has run, window.Plotly is a promise
// of it, which dcc.Graph waits on instead of loading plotly.js itself. A figure with another trace type (the
// timeline's heatmap, WebGL lines, parallel coordinates) first loads the full bundle (Dash's copy, which Dash names
// in window._dashPlotlyJSURL), which then replaces the basic one for every later call.
(function () {
    var BASIC_TRACES = {scatter: true, bar: true, pie: true};  // scripts.py's BASIC_TRACES
    var full = null;

    function loadFull() {
        if (!full) {
            full = new Promise(function (resolve, reject) {
                var script = document.createElement('script');
                script.src = window._dashPlotlyJSURL;
                script.onload = function () { resolve(window.Plotly); };
                script.onerror = function () {
                    full = null;  // a later figure tries again
                    reject(new Error('plotly.js did not load from ' + script.src));
                };
                document.head.appendChild(script);
            });
        }
        return full;
    }

    function needsFull(figure) {  // react(gd, {data, layout, ...}) or react(gd, data, layout, ...)
        var data = Array.isArray(figure) ? figure : (figure && figure.data) || [];
        return data.some(function (trace) { return trace && !BASIC_TRACES[trace.type || 'scatter']; });
    }

    function fullOnDemand(basic, method) {
        var draw = basic[method];
        basic[method] = function (gd, figure) {
            var args = arguments;
            if (!needsFull(figure)) { return draw.apply(basic, args); }
            return loadFull().then(function (plotly) { return plotly[method].apply(plotly, args); });
        };
    }

    if (!window.Plotly) {
        window.Plotly = new Promise(function (resolve) {
            window.torchscopePlotlyLoaded = function (bundle) {
                if (bundle === 'basic') {
                    fullOnDemand(window.Plotly, 'react');
                    fullOnDemand(window.Plotly, 'newPlot');
                }
                resolve(window.Plotly);
            };
        });
    }
})();
