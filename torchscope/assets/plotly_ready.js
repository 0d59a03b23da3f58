// plotly.js for dcc.Graph (torchscope/dashboard/scripts.py). The page loads plotly.js's basic bundle (scatter, bar,
// pie) as a deferred script, run while Dash fetches the page's content; until it has run, window.Plotly is a promise
// of it, which dcc.Graph waits on instead of loading plotly.js itself. The first figure with another trace type (the
// timeline's heatmap, WebGL lines, parallel coordinates) loads the full bundle (Dash's copy, which Dash names in
// window._dashPlotlyJSURL), which then replaces the basic one for good.
//
// From that moment every call (dcc.Graph's redraws, resizes and purges alike) waits for the full bundle and goes to
// it: the basic bundle must never redraw a chart the full one drew, or it would draw a trace type it does not know
// as a plain scatter. A chart the basic bundle drew is purged by it before the full one redraws it.
(function () {
    var BASIC_TRACES = {scatter: true, bar: true, pie: true};  // scripts.py's BASIC_TRACES
    var full = null;

    function loadFull() {
        if (!full) {
            full = new Promise(function (resolve, reject) {
                var script = document.createElement('script');
                script.src = window._dashPlotlyJSURL;
                script.onload = function () { resolve(window.Plotly); };
                script.onerror = function () { reject(new Error('plotly.js did not load from ' + script.src)); };
                document.head.appendChild(script);
            });
        }
        return full;
    }

    function needsFull(figure) {  // react(gd, {data, layout, ...}) or react(gd, data, layout, ...)
        var data = Array.isArray(figure) ? figure : (figure && figure.data) || [];
        return data.some(function (trace) { return trace && !BASIC_TRACES[trace.type || 'scatter']; });
    }

    function handOver(basic) {  // every method of the basic bundle now waits for the full one and calls it
        var purge = basic.purge;
        var drawnByFull = new WeakSet();
        Object.keys(basic).forEach(function (name) {
            if (typeof basic[name] !== 'function') { return; }
            basic[name] = function (gd) {
                var args = arguments;
                return loadFull().then(function (plotly) {
                    if ((name === 'react' || name === 'newPlot') && gd && gd._fullLayout && !drawnByFull.has(gd)) {
                        purge(gd);  // drawn by the basic bundle: the full one draws it afresh
                    }
                    if (gd && typeof gd === 'object') { drawnByFull.add(gd); }
                    return plotly[name].apply(plotly, args);
                });
            };
        });
        basic.Plots.resize = function (gd) {
            return loadFull().then(function (plotly) { return plotly.Plots.resize(gd); });
        };
    }

    function fullOnDemand(basic) {
        ['react', 'newPlot'].forEach(function (name) {
            var draw = basic[name];
            basic[name] = function (gd, figure) {
                if (!needsFull(figure)) { return draw.apply(basic, arguments); }
                handOver(basic);
                return basic[name].apply(basic, arguments);
            };
        });
    }

    if (!window.Plotly) {
        window.Plotly = new Promise(function (resolve) {
            window.torchscopePlotlyLoaded = function (bundle) {
                if (bundle === 'basic') { fullOnDemand(window.Plotly); }
                resolve(window.Plotly);
            };
        });
    }
})();
