// Events: reminders and state changes, filtered by kind, device and time, a page at a time.
"use strict";

(() => {
  const { el, api, query, replaceChildren, showMessage, formatTime } = vigil;
  const PAGE_SIZE = 25;
  const form = document.getElementById("filters");
  const table = document.getElementById("events");
  const message = document.getElementById("message");
  const newer = document.getElementById("newer");
  const older = document.getElementById("older");
  let cursors = [null];
  let nextCursor = null;

  // Filters live in the address (?kind=&device_id=&since=&until=), so a view can be shared.
  function readFilters() {
    const search = new URLSearchParams(location.search);
    return {
      kind: search.get("kind") || "",
      device_id: search.get("device_id") || "",
      since: search.get("since") || "",
      until: search.get("until") || "",
    };
  }

  function fillForm(filters) {
    for (const [name, value] of Object.entries(filters)) {
      const field = form.elements[name];
      const listed = Array.from(field.options || []).some((option) => option.value === value);
      if (field.tagName === "SELECT" && value && !listed) {
        field.append(el("option", { value }, value));
      }
      field.value = value;
    }
  }

  function seconds(localTime) {
    return localTime ? new Date(localTime).getTime() / 1000 : undefined;
  }

  function describe(event) {
    const data = event.data;
    if (event.kind === "reminder") {
      const title = data.title ? [el("strong", {}, data.title), el("br")] : [];
      return [...title, data.message || ""];
    }
    if (event.kind === "state") {
      const hunched = data.hunched ? ", hunched" : "";
      const person = data.person_present === false ? "nobody" : data.state + hunched;
      return (data.previous || "?") + " → " + person;
    }
    return JSON.stringify(data);
  }

  function snapshotCell(event) {
    const url = vigil.sameOriginUrl(event.snapshot_url || "");
    if (!event.snapshot_url || url === null) {
      return el("td", {});
    }
    return el("td", {}, el("a", { href: url, target: "_blank", rel: "noopener" },
      el("img", { className: "thumb", src: url, alt: "snapshot", loading: "lazy" })));
  }

  function eventRow(event) {
    const posture = "/posture/" + encodeURIComponent(event.device_id);
    return el("tr", { "data-kind": event.kind },
      el("td", { className: "time" }, formatTime(event.ts)),
      el("td", {}, el("a", { href: posture }, event.device_id)),
      el("td", {}, event.kind),
      el("td", {}, describe(event)),
      snapshotCell(event));
  }

  function showPage(page) {
    nextCursor = page.next_cursor;
    if (page.items.length === 0) {
      const empty = el("td", { colspan: 5 }, "No events match these filters.");
      replaceChildren(table, el("tr", {}, empty));
    } else {
      replaceChildren(table, page.items.map(eventRow));
    }
    newer.disabled = cursors.length <= 1;
    older.disabled = !nextCursor;
    document.getElementById("page-number").textContent = "Page " + cursors.length;
  }

  async function load() {
    const filters = readFilters();
    const parameters = query({
      kind: filters.kind, device_id: filters.device_id,
      since: seconds(filters.since), until: seconds(filters.until),
      limit: PAGE_SIZE, cursor: cursors[cursors.length - 1],
    });
    document.body.dataset.loaded = "false";
    try {
      showPage(await api("/api/events?" + parameters));
      message.replaceChildren();
    } catch (error) {
      showMessage(message, "Cannot load events: " + error.message, "error");
    }
    document.body.dataset.loaded = "true";
  }

  async function loadDevices() {
    try {
      const page = await api("/api/devices?limit=1000");
      const select = form.elements.device_id;
      const known = new Set(Array.from(select.options).map((o) => o.value));
      for (const device of page.items.filter((d) => !known.has(d.id))) {
        select.append(el("option", { value: device.id }, device.name || device.id));
      }
      select.value = readFilters().device_id;
    } catch (error) {
      showMessage(message, "Cannot load devices: " + error.message, "error");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filters = Object.fromEntries(new FormData(form).entries());
    history.pushState(null, "", "?" + query(filters));
    cursors = [null];
    load();
  });
  older.addEventListener("click", () => {
    cursors.push(nextCursor);
    load();
  });
  newer.addEventListener("click", () => {
    cursors.pop();
    load();
  });
  window.addEventListener("popstate", () => {
    fillForm(readFilters());
    cursors = [null];
    load();
  });

  fillForm(readFilters());
  loadDevices();
  load();
})();
