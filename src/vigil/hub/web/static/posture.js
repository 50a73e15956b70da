// Posture: a period picker, headline numbers and charts of one device, from the summary API.
"use strict";

(() => {
  const { el, api, query, replaceChildren, showMessage, formatDuration, formatPercent } = vigil;
  const COLOURS = {
    sitting: "#E69F00", standing: "#009E73", unknown: "#8C8C8C", away: "#9CCBEA",
    hunched: "#D55E00",
  };
  const ACTIVITIES = [
    ["sitting", "sitting"], ["standing", "standing"],
    ["unknown", "posture unknown"], ["away", "away"],
  ];
  const CHARTS = ["hourly", "hunched", "daily", "weekly"];
  const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
  const deviceId = vigil.page().deviceId;
  const customForm = document.getElementById("custom");
  const message = document.getElementById("message");

  // The period: ?period=today|7d|30d, or ?from=YYYY-MM-DD&to=YYYY-MM-DD (local days).
  function readPeriod() {
    const search = new URLSearchParams(location.search);
    const from = search.get("from");
    const to = search.get("to");
    if (DAY_PATTERN.test(from) && DAY_PATTERN.test(to)) {
      return { kind: "custom", from, to };
    }
    const kind = search.get("period");
    return { kind: ["7d", "30d"].includes(kind) ? kind : "today" };
  }

  function localMidnight(date) {
    return new Date(date.getFullYear(), date.getMonth(), date.getDate());
  }

  function parseDay(text) {
    const [year, month, day] = text.split("-").map(Number);
    return new Date(year, month - 1, day);
  }

  function addDays(date, days) {
    return new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
  }

  function isoDay(date) {
    const month = String(date.getMonth() + 1).padStart(2, "0");
    const day = String(date.getDate()).padStart(2, "0");
    return date.getFullYear() + "-" + month + "-" + day;
  }

  // Returns {since, until} in Unix seconds and a sentence naming the period.
  function periodBounds(period) {
    const today = localMidnight(new Date());
    if (period.kind === "custom") {
      const first = parseDay(period.from);
      const last = parseDay(period.to);
      const text = period.from === period.to ? period.from : period.from + " to " + period.to;
      return { since: first.getTime() / 1000, until: addDays(last, 1).getTime() / 1000, text };
    }
    // Whole local days up to the end of today.
    const days = { today: 1, "7d": 7, "30d": 30 }[period.kind];
    const start = addDays(today, 1 - days);
    const text = days === 1 ? "Today" : "The last " + days + " days";
    return { since: start.getTime() / 1000, until: addDays(today, 1).getTime() / 1000, text };
  }

  function markPeriodButtons(period) {
    for (const button of document.querySelectorAll("button[data-period]")) {
      button.setAttribute("aria-pressed", String(button.dataset.period === period.kind));
    }
    customForm.classList.toggle("hidden", period.kind !== "custom");
    if (period.kind === "custom") {
      customForm.elements.from.value = period.from;
      customForm.elements.to.value = period.to;
    }
  }

  function choosePeriod(kind) {
    if (kind === "custom") {
      const today = isoDay(new Date());
      customForm.classList.remove("hidden");
      customForm.elements.from.value ||= isoDay(addDays(new Date(), -6));
      customForm.elements.to.value ||= today;
      customForm.elements.from.focus();
      return;
    }
    history.pushState(null, "", "?" + query({ period: kind }));
    load();
  }

  function setDownloads(bounds) {
    const parameters = query({ device_id: deviceId, since: bounds.since, until: bounds.until });
    document.getElementById("download-csv").href = "/api/records.csv?" + parameters;
    document.getElementById("download-parquet").href = "/api/records.parquet?" + parameters;
  }

  function card(kind, label, value, detail) {
    return el("div", { className: "card " + kind, "data-card": kind },
      el("div", { className: "label" }, label),
      el("div", { className: "value" }, value),
      el("div", { className: "detail" }, detail));
  }

  function shareText(part, whole) {
    return whole > 0 ? formatPercent(part / whole) + " of time at the desk" : "nobody at the desk";
  }

  function streakCard(streak) {
    if (!streak || !streak.seconds) {
      return card("sitting", "Longest sitting streak", "none", "no sitting recorded");
    }
    const end = new Date(streak.end * 1000).toLocaleTimeString();
    const span = vigil.formatTime(streak.start) + " to " + end;
    return card("sitting", "Longest sitting streak", formatDuration(streak.seconds), span);
  }

  function remindersCard(reminders) {
    const byReason = Object.entries(reminders.by_reason)
      .map(([reason, count]) => count + " " + reason).join(", ");
    return card("reminders", "Reminders", String(reminders.total), byReason || "none");
  }

  function showCards(summary) {
    const totals = summary.totals;
    const present = totals.sitting_seconds + totals.standing_seconds + totals.unknown_seconds;
    replaceChildren(document.getElementById("cards"),
      card("sitting", "Time sitting", formatDuration(totals.sitting_seconds),
        shareText(totals.sitting_seconds, present)),
      card("standing", "Time standing", formatDuration(totals.standing_seconds),
        shareText(totals.standing_seconds, present)),
      card("hunched", "Hunched", formatPercent(totals.hunched_share),
        "of sitting time (" + formatDuration(totals.hunched_sitting_seconds) + ")"),
      streakCard(summary.longest_streak),
      remindersCard(summary.reminders));
  }

  function hourLabel(item) {
    return String(item.hour).padStart(2, "0") + ":00";
  }

  function dayLabel(item) {
    const options = { weekday: "short", day: "2-digit", month: "short" };
    return new Date(item.start * 1000).toLocaleDateString([], options);
  }

  function weekLabel(item) {
    const options = { day: "2-digit", month: "short" };
    return "week of " + new Date(item.start * 1000).toLocaleDateString([], options);
  }

  // Share of sitting time spent hunched, in percent; null where nobody sat.
  function hunchedPercent(item) {
    if (item.sitting_seconds <= 0) {
      return null;
    }
    return (100 * item.hunched_sitting_seconds) / item.sitting_seconds;
  }

  function activityBars(items, divisor) {
    return ACTIVITIES.map(([name, label]) => ({
      name, label, colour: COLOURS[name],
      values: items.map((item) => item[name + "_seconds"] / divisor),
    }));
  }

  function hunchedSeries(values) {
    const label = "hunched (share of sitting)";
    return { name: "hunched", label, colour: COLOURS.hunched, unit: "%", values };
  }

  function hideChart(key) {
    document.getElementById("section-" + key).classList.add("hidden");
    vigilCharts.clear(key, document.getElementById("chart-" + key));
  }

  // The section is shown first, so the chart is drawn at its real width.
  function showChart(key, spec) {
    document.getElementById("section-" + key).classList.remove("hidden");
    vigilCharts.draw(key, document.getElementById("chart-" + key), spec);
  }

  function periodSpec(key, items, label) {
    return {
      keys: items.map((item) => item.start), labels: items.map(label), unit: "h",
      axisLabel: key === "daily" ? "day" : "week",
      bars: activityBars(items, 3600), line: hunchedSeries(items.map(hunchedPercent)),
    };
  }

  function showCharts(summary, bounds) {
    if (summary.totals.records === 0) {
      CHARTS.forEach(hideChart);
      showMessage(message, "No records of this device in this period.");
      return;
    }
    const hourly = summary.hourly;
    const hours = hourly.map((item) => item.hour);
    showChart("hourly", {
      keys: hours, labels: hourly.map(hourLabel), unit: "min", axisLabel: "hour",
      bars: activityBars(hourly, 60),
    });
    showChart("hunched", {
      keys: hours, labels: hourly.map(hourLabel), unit: "%", axisLabel: "hour",
      bars: [hunchedSeries(hourly.map((item) => hunchedPercent(item) ?? 0))],
    });
    const days = Math.round((bounds.until - bounds.since) / 86400);  // a DST day is 23 or 25 h
    const periodCharts = [["daily", days > 1, dayLabel], ["weekly", days > 7, weekLabel]];
    for (const [key, wanted, label] of periodCharts) {
      if (wanted) {
        showChart(key, periodSpec(key, summary[key], label));
      } else {
        hideChart(key);
      }
    }
  }

  async function load() {
    const period = readPeriod();
    const bounds = periodBounds(period);
    markPeriodButtons(period);
    setDownloads(bounds);
    document.getElementById("period-text").textContent = bounds.text;
    document.body.dataset.loaded = "false";
    const parameters = query({
      device_id: deviceId, since: bounds.since, until: bounds.until, tz: vigil.timeZone(),
    });
    try {
      const summary = await api("/api/posture/summary?" + parameters);
      message.replaceChildren();
      showCards(summary);
      showCharts(summary, bounds);
      window.vigilPosture = { period: bounds, summary };
    } catch (error) {
      showMessage(message, "Cannot load the posture summary: " + error.message, "error");
    }
    document.body.dataset.loaded = "true";
  }

  for (const button of document.querySelectorAll("button[data-period]")) {
    button.addEventListener("click", () => choosePeriod(button.dataset.period));
  }
  customForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const from = customForm.elements.from.value;
    const to = customForm.elements.to.value;
    if (!from || !to || from > to) {
      showMessage(message, "Choose a first day on or before the last day.", "error");
      return;
    }
    history.pushState(null, "", "?" + query({ from, to }));
    load();
  });
  window.addEventListener("popstate", load);
  load();
})();
