/* Analytics dashboards: draws the charts described in the page's JSON block with the
   vendored ECharts, opens the drill-down of a clicked point, submits the pickers on
   change and asks for a recomputation. Loaded as a file: the pages allow no inline script. */
(function () {
  "use strict";

  var PALETTE = ["#1f5fbf", "#b3261e", "#1e7a46", "#a15c00", "#6b4fbb", "#0f7c8c", "#8a6d3b", "#c2185b"];

  function axisOption(spec) {
    return (spec.axes || [{}]).map(function (axis, i) {
      return {
        type: "value",
        position: i === 0 ? "left" : "right",
        axisLabel: { formatter: "{value}" + (axis.suffix || "") },
        splitLine: { show: i === 0 }
      };
    });
  }

  function seriesOption(s) {
    var out = {
      name: s.name,
      type: s.type,
      data: s.data,
      yAxisIndex: s.yAxis || 0,
      connectNulls: false,
      emphasis: { focus: "series" }
    };
    if (s.type === "line") {
      out.smooth = false;
      out.symbolSize = 6;
    }
    if (s.dashed) {
      out.lineStyle = { type: "dashed" };
    }
    if (s.band) {
      // The band: an invisible lower line and the width stacked on it, filled.
      out.stack = "band";
      out.symbol = "none";
      out.lineStyle = { opacity: 0 };
      if (s.band === "width") {
        out.areaStyle = { color: "rgba(31, 95, 191, 0.18)" };
      }
      out.tooltip = { show: false };
    }
    return out;
  }

  // Tooltips drawn on the canvas: ECharts' HTML tooltips carry inline style attributes,
  // which the content security policy refuses (core/headers.py).
  var TOOLTIP_MODE = "richText";

  function optionFor(spec) {
    if (spec.type === "pie") {
      return {
        color: PALETTE,
        tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)", renderMode: TOOLTIP_MODE },
        legend: { type: "scroll", bottom: 0 },
        series: [{ type: "pie", radius: ["35%", "62%"], center: ["50%", "45%"], data: spec.data,
                   label: { formatter: "{b}\n{d}%" } }]
      };
    }
    var axes = axisOption(spec);
    var categories = { type: "category", data: spec.categories };
    var horizontal = !!spec.horizontal;
    return {
      color: PALETTE,
      tooltip: { trigger: "axis", renderMode: TOOLTIP_MODE },
      legend: { type: "scroll", top: 0 },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      xAxis: horizontal ? axes[0] : categories,
      yAxis: horizontal ? categories : axes,
      series: spec.series.map(function (s) {
        var out = seriesOption(s);
        if (horizontal) {
          delete out.yAxisIndex;
        }
        return out;
      })
    };
  }

  function linkFor(spec, params) {
    if (spec.type === "pie") {
      return params.data && params.data.link;
    }
    var s = spec.series[params.seriesIndex];
    return s && s.links ? s.links[params.dataIndex] : null;
  }

  function drawCharts() {
    var block = document.getElementById("an-charts");
    if (!block || typeof echarts === "undefined") {
      return;
    }
    var locale = block.getAttribute("data-lang") === "zh_CN" ? "ZH" : "EN";
    var specs = JSON.parse(block.textContent);
    var charts = [];
    specs.forEach(function (spec) {
      var el = document.getElementById(spec.id);
      if (!el) {
        return;
      }
      var chart = echarts.init(el, null, { renderer: "canvas", locale: locale });
      chart.setOption(optionFor(spec));
      chart.on("click", function (params) {
        var link = linkFor(spec, params);
        if (link) {
          window.location.href = link;
        }
      });
      charts.push(chart);
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.resize(); });
    });
  }

  function autoSubmit() {
    document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () {
        // A new period kind or slice has other periods or members: let the server choose.
        var reset = el.getAttribute("data-reset");
        var other = reset && el.form.elements[reset];
        if (other) {
          other.disabled = true;
        }
        el.form.submit();
      });
    });
  }

  function recompute() {
    document.querySelectorAll("[data-recompute]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var headers = { "Content-Type": "application/json" };
        var hx = document.body.getAttribute("hx-headers");
        if (hx) {
          try { Object.assign(headers, JSON.parse(hx)); } catch (e) { /* no CSRF header */ }
        }
        var status = document.querySelector("[data-recompute-status]");
        btn.disabled = true;
        fetch(btn.getAttribute("data-recompute"), {
          method: "POST",
          headers: headers,
          credentials: "same-origin",
          body: JSON.stringify({ steps: [] })
        }).then(function (r) {
          status.textContent = r.ok ? btn.getAttribute("data-done") : btn.getAttribute("data-failed");
        }).catch(function () {
          status.textContent = btn.getAttribute("data-failed");
        }).then(function () {
          btn.disabled = false;
        });
      });
    });
  }

  function start() {
    autoSubmit();
    recompute();
    drawCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
