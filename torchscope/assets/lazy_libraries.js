// AG Grid's and Cytoscape's component libraries load when a page first shows one of their components, not with every
// page (torchscope/dashboard/scripts.py, defer_libraries): on 2 cores they took about 0.1 s to start, which a page
// without a grid or a graph waited for. window[namespace] stays this file's object for good: a component name asked
// for before the library loaded gets a stand-in, which loads the library and draws the real component with the same
// props (the same stand-in after the load too, so React never swaps it for the real one and redraws it from
// scratch); anything else is the library's own, once it has loaded. Dash waits for a stand-in to be ready
// (_dashprivate_isLazyComponentReady, as for its own lazy components) before it runs a callback on its props.
// The components a page shows as it opens (window.torchscopeComponentsAtOpen, "namespace.Component") start to load
// once the browser is idle after the page is parsed, while Dash fetches the page's content (the head preloads them).
(function () {
    var LIBRARIES = window.torchscopeLazyLibraries || {};  // namespace -> script URL, written by the page
    var AT_OPEN = window.torchscopeComponentsAtOpen || [];
    var CHUNKS_AT_OPEN = window.torchscopeChunksAtOpen || [];  // their libraries' lazy chunks (webpack JSONP files)

    function lazyLibrary(namespace) {
        var library = null;
        var loading = null;
        var standIns = {};

        function load() {
            if (!loading) {
                loading = new Promise(function (resolve, reject) {
                    var script = document.createElement('script');
                    script.src = LIBRARIES[namespace];
                    script.onload = function () { resolve(library); };
                    script.onerror = function () {
                        loading = null;  // a later component tries again
                        reject(new Error(namespace + ' did not load from ' + script.src));
                    };
                    document.head.appendChild(script);
                });
            }
            return loading;
        }

        function standIn(type) {
            function LazyComponent(props) {
                var state = React.useState(function () { return library && library[type]; });
                var real = state[0];
                var setReal = state[1];
                React.useEffect(function () {
                    var mounted = true;
                    if (!real) {
                        load().then(function (loaded) {
                            if (mounted) { setReal(function () { return loaded[type]; }); }
                        });
                    }
                    return function () { mounted = false; };
                }, []);
                return real ? React.createElement(real, props) : null;
            }
            Object.defineProperty(LazyComponent, '_dashprivate_isLazyComponentReady', {
                get: function () {  // the library, then the real component's own lazy chunk
                    return load().then(function (loaded) {
                        return loaded[type]._dashprivate_isLazyComponentReady || true;
                    });
                },
            });
            return LazyComponent;
        }

        var own = {};  // what other code sets on the library before it has loaded
        var facade = new Proxy(own, {
            get: function (target, key) {
                if (typeof key !== 'string') { return library ? library[key] : undefined; }
                if (standIns[key]) { return standIns[key]; }
                if (library) { return library[key]; }
                if (Object.prototype.hasOwnProperty.call(own, key)) { return own[key]; }
                return (standIns[key] = standIn(key));
            },
            set: function (target, key, value) {  // e.g. AG Grid's chunk: window.dash_ag_grid.useGridFilter = ...
                (library || own)[key] = value;
                return true;
            },
        });
        Object.defineProperty(window, namespace, {  // the library's bundle assigns itself here as it runs
            configurable: true,
            get: function () { return facade; },
            set: function (value) {  // `window[namespace] = window[namespace] || {}` leaves it as it is
                if (value === facade) { return; }
                Object.keys(own).forEach(function (key) { if (!(key in value)) { value[key] = own[key]; } });
                library = value;
            },
        });
    }

    Object.keys(LIBRARIES).forEach(function (namespace) {
        if (!window[namespace]) { lazyLibrary(namespace); }  // else it was loaded with the page after all
    });

    if (AT_OPEN.length) {
        document.addEventListener('DOMContentLoaded', function () {  // assets/plotly_ready.js has run by then
            (window.torchscopeWhenIdle || setTimeout)(function () {
                var loads = AT_OPEN.map(function (name) {
                    var parts = name.split('.');
                    var library = window[parts[0]];
                    var ready = library && library[parts[1]] && library[parts[1]]._dashprivate_isLazyComponentReady;
                    return Promise.resolve(ready).catch(function () {});
                });
                Promise.all(loads).then(function () {  // a chunk run after its library is installed in it at once
                    CHUNKS_AT_OPEN.forEach(function (url) {
                        var script = document.createElement('script');
                        script.src = url;
                        document.head.appendChild(script);
                    });
                });
            });
        });
    }
})();
