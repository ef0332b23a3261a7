// The dashboard's only script (the CSP allows no inline script and no eval).
// It draws the plotly figures the server put in <script type="application/json">
// elements, refreshes the page's [data-live] regions and charts in place, and
// shows rollback previews.
"use strict";

(function () {
  // region id -> the HTML the server last sent for it (the live DOM differs
  // once plotly has drawn into it, so it cannot be compared directly).
  const serverHtml = new Map();

  function plotConfig(chart) {
    if (chart.dataset.kind === "spark") {
      return { staticPlot: true, displayModeBar: false };
    }
    return { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  }

  function draw(chart) {
    const source = document.getElementById(chart.dataset.figure);
    if (!source || !window.Plotly) {
      return;
    }
    const figure = JSON.parse(source.textContent);
    window.Plotly.react(chart, figure.data, figure.layout || {}, plotConfig(chart));
  }

  function drawAll(root) {
    root.querySelectorAll("[data-figure]").forEach(draw);
  }

  // A region the user is working in (focus inside, or a field changed) is
  // left alone until the next refresh.
  function isBeingEdited(region) {
    if (region.contains(document.activeElement)) {
      return true;
    }
    return Array.from(region.querySelectorAll("input, textarea, select")).some(function (field) {
      if (field.tagName === "SELECT") {
        return Array.from(field.options).some(function (option) { return option.selected !== option.defaultSelected; });
      }
      return field.type !== "hidden" && field.value !== field.defaultValue;
    });
  }

  function setStatus(text) {
    const status = document.getElementById("live-status");
    if (status) {
      status.textContent = text;
    }
  }

  async function refresh() {
    let response;
    try {
      response = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      setStatus("Live update failed (network); trying again shortly.");
      return true;
    }
    if (response.redirected || !response.ok) {
      setStatus("Live updates stopped (" + response.status + "): reload the page; you may need to log in again.");
      return false;
    }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    document.querySelectorAll("[data-live]").forEach(function (region) {
      const update = fresh.getElementById(region.id);
      if (!update || update.innerHTML === serverHtml.get(region.id) || isBeingEdited(region)) {
        return;
      }
      region.innerHTML = update.innerHTML;
      serverHtml.set(region.id, update.innerHTML);
      drawAll(region);
      markScrollingTables();
    });
    document.querySelectorAll("[data-figure]").forEach(function (chart) {
      if (chart.closest("[data-live]")) {
        return; // redrawn with its region
      }
      const source = document.getElementById(chart.dataset.figure);
      const update = fresh.getElementById(chart.dataset.figure);
      if (source && update && update.textContent !== source.textContent) {
        source.textContent = update.textContent;
        draw(chart);
      }
    });
    setStatus("Updated at " + new Date().toISOString().slice(11, 19) + " UTC; refreshing every " +
      document.body.dataset.refreshSeconds + " s.");
    return true;
  }

  function startRefreshing() {
    const seconds = Number(document.body.dataset.refreshSeconds);
    if (!seconds) {
      return;
    }
    const next = function () {
      window.setTimeout(async function () {
        // A hidden tab skips its turn rather than loading the server.
        if (document.hidden || await refresh()) {
          next();
        }
      }, seconds * 1000);
    };
    next();
  }

  // --- rollback preview --------------------------------------------------------------

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) {
      node.textContent = text;
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  function number(value, digits) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
  }

  function table(headings, rows) {
    const result = element("table", undefined, "data compact");
    const head = result.createTHead().insertRow();
    headings.forEach(function (heading) {
      const cell = element("th", heading);
      cell.scope = "col";
      head.appendChild(cell);
    });
    const body = result.createTBody();
    rows.forEach(function (cells) {
      const row = body.insertRow();
      cells.forEach(function (text) { row.insertCell().textContent = text; });
    });
    return result;
  }

  // The offline estimate of the version's policy on the tasks logged since its capture.
  function describeOffline(offline) {
    if (offline.refused) {
      return "Expected score: the logs cannot tell (" + offline.rows + " tasks since its capture). " + offline.refused;
    }
    return "Expected score from the logs: " + number(offline.score.value, 3) + " (95 % interval " +
      number(offline.score.low, 3) + " to " + number(offline.score.high, 3) + "; " + number(offline.logged_score, 3) +
      " as logged), success " + number(offline.success.value * 100, 1) + " % (" + number(offline.success.low * 100, 1) +
      " to " + number(offline.success.high * 100, 1) + " %), from " + offline.rows + " tasks since its capture, " +
      "effective sample size " + number(offline.effective_samples, 0) + ".";
  }

  function describePreview(preview) {
    const nodes = [];
    const when = preview.captured_at.slice(0, 19).replace("T", " ");
    nodes.push(element("h4", "Rolling back to " + preview.version));
    nodes.push(element("p", "Captured " + when + " UTC after " + preview.tasks + " tasks" +
      (preview.known_good ? "; known good." : "; not marked known good."), "muted"));
    const facts = element("ul", undefined, "plain");
    facts.appendChild(element("li", "Score: " + number(preview.score_at_version, 3) + " at " + preview.version +
      ", " + number(preview.score_now, 3) + " now."));
    facts.appendChild(element("li", "Q entries: " + preview.q_entries.live + " now → " + preview.q_entries.restored +
      " after."));
    if (preview.offline) {
      facts.appendChild(element("li", describeOffline(preview.offline)));
    }
    facts.appendChild(element("li", "Best action changes in " + preview.best_action_changes_total + " state" +
      (preview.best_action_changes_total === 1 ? "" : "s") + "."));
    if (preview.patterns_removed.length) {
      facts.appendChild(element("li", "Patterns removed: " + preview.patterns_removed.join(", ") + "."));
    }
    if (preview.patterns_added.length) {
      facts.appendChild(element("li", "Patterns restored: " + preview.patterns_added.join(", ") + "."));
    }
    Object.keys(preview.config_changes).forEach(function (name) {
      const change = preview.config_changes[name];
      facts.appendChild(element("li", name.replace(/_/g, " ") + ": " + number(change.live, 4) + " now → " +
        number(change.restored, 4) + " after."));
    });
    facts.appendChild(element("li", "Learning pauses after a rollback; the operator who rolled back, or an admin, resumes it."));
    nodes.push(facts);
    if (preview.best_action_changes.length) {
      nodes.push(table(["Task type", "State", "Best now", "Best after"], preview.best_action_changes.slice(0, 8).map(
        function (change) { return [change.task_type, change.state_words, change.live || "—", change.restored || "—"]; })));
    }
    return nodes;
  }

  async function showPreview(url) {
    const panel = document.getElementById("rollback-preview");
    if (!panel) {
      return;
    }
    const body = panel.querySelector(".preview-body");
    body.replaceChildren(element("p", "Loading the preview…", "muted"));
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) {
        body.replaceChildren(element("p", "The preview could not be loaded (" + response.status + ")."));
        return;
      }
      body.replaceChildren.apply(body, describePreview(await response.json()));
    } catch (error) {
      body.replaceChildren(element("p", "The preview could not be loaded (network)."));
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-preview-url]");
    if (button && button.tagName === "BUTTON") {
      showPreview(button.dataset.previewUrl);
    }
    if (event.target.closest("button[data-print]")) {
      window.print();
    }
  });

  // A table box that scrolls sideways (a wide table on a phone) must be
  // reachable by keyboard to scroll: it becomes a named, focusable region.
  function markScrollingTables() {
    document.querySelectorAll(".table-wrap").forEach(function (box) {
      const scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        const heading = box.closest("section") && box.closest("section").querySelector("h2, h3");
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", (heading ? heading.textContent.trim() : "Table") + " (scrolls sideways)");
      } else if (!scrolls && box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }

  // A chart drawn inside a closed <details> has no width: redraw it on opening.
  document.addEventListener("toggle", function (event) {
    if (event.target.open && window.Plotly) {
      event.target.querySelectorAll(".js-plotly-plot").forEach(function (chart) {
        window.Plotly.Plots.resize(chart);
      });
    }
  }, true);
  window.addEventListener("resize", markScrollingTables);

  document.addEventListener("DOMContentLoaded", function () {
    markScrollingTables();
    document.querySelectorAll("[data-live]").forEach(function (region) {
      serverHtml.set(region.id, region.innerHTML);
    });
    drawAll(document);
    const panel = document.getElementById("rollback-preview");
    if (panel && panel.dataset.previewUrl) {
      showPreview(panel.dataset.previewUrl);
    }
    startRefreshing();
  });
})();
