// plotly.js for dcc.Graph (torchscope/dashboard/scripts.py, first_paint_scripts). The page carries no plotly.js tag:
// window.torchscopePlotly names the bundles ({basic, full: URL; first: the bundle the page's first charts need, or
// null}). window.Plotly is a promise-like of plotly.js, which dcc.Graph waits on instead of loading plotly.js itself;
// the first chart to wait on it loads the page's bundle (the basic one when the page named none). A page whose
// first charts need a bundle starts to run it once the browser is idle after the page is parsed, which is while Dash
// fetches the page's content (the head preloads it): a script run before Dash asked for the content would delay it.
//
// The basic bundle draws scatter, bar and pie. The first figure with another trace type (parallel coordinates,
// WebGL lines) loads the full bundle, which then replaces the basic one for good: from that moment every call
// (dcc.Graph's redraws, resizes and purges alike) waits for the full bundle and goes to it, since the basic bundle
// must never redraw a chart the full one drew (it would draw a trace type it does not know as a plain scatter). A
// chart the basic bundle drew is purged by it before the full one redraws it.
(function () {
    var BASIC_TRACES = {scatter: true, bar: true, pie: true};  // scripts.py's BASIC_TRACES
    var bundles = window.torchscopePlotly || {};
    var loading = {};  // URL -> promise of window.Plotly once that script has run

    function load(url) {
        if (!loading[url]) {
            loading[url] = new Promise(function (resolve, reject) {
                var script = document.createElement('script');
                script.src = url;
                script.onload = function () { resolve(window.Plotly); };
                script.onerror = function () {
                    delete loading[url];  // the next chart tries again
                    reject(new Error('plotly.js did not load from ' + url));
                };
                document.head.appendChild(script);
            });
        }
        return loading[url];
    }

    function loadFull() { return load(bundles.full); }

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

    var plotly = null;  // the promise of the page's first bundle, once something asked for it

    function start() {
        if (!plotly) {
            var basic = bundles.first !== 'full' && bundles.basic;
            plotly = load(basic || bundles.full).then(function (loaded) {
                if (basic) { fullOnDemand(loaded); }
                return loaded;
            }, function (error) {
                plotly = null;  // the next chart tries again
                throw error;
            });
        }
        return plotly;
    }

    function whenIdle(run) {  // once the page is parsed and the browser has nothing else to do (at most 0.3 s on)
        function idle() {
            if (window.requestIdleCallback) { window.requestIdleCallback(run, {timeout: 300}); }
            else { setTimeout(run, 0); }
        }
        if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', idle); }
        else { idle(); }
    }

    if (!window.Plotly && bundles.full) {
        window.Plotly = {then: function (resolve, reject) { return start().then(resolve, reject); }};
        if (bundles.first) { whenIdle(start); }
    }
    window.torchscopeWhenIdle = whenIdle;  // assets/lazy_libraries.js starts the page's first grid with it
})();
