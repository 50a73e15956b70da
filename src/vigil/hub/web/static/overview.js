// Overview: every device with its status, refreshed every few seconds.
"use strict";

(() => {
  const { el, api, replaceChildren, showMessage, formatRelative } = vigil;
  const REFRESH_MS = 5000;
  const container = document.getElementById("devices");

  function devicePath(kind, id) {
    return "/" + kind + "/" + encodeURIComponent(id);
  }

  function fact(term, value, name) {
    return [el("dt", {}, term), el("dd", { "data-field": name }, value)];
  }

  function statusBadge(status) {
    return el("span", { className: status === "online" ? "status online" : "status" }, status);
  }

  function deviceCard(device) {
    const online = device.status === "online";
    const fps = typeof device.fps === "number" ? device.fps.toFixed(1) : "n/a";
    return el(
      "article",
      { className: online ? "device online" : "device", "data-device-id": device.id },
      el("h2", {}, device.name || device.id),
      el("dl", {},
        fact("status", statusBadge(device.status), "status"),
        fact("app", device.app || "n/a", "app"),
        fact("fps", fps, "fps"),
        fact("last seen", formatRelative(device.last_seen), "last_seen"),
        fact("alerts today", String(device.alerts_today ?? 0), "alerts_today"),
      ),
      el("div", { className: "links" },
        el("a", { className: "button", href: devicePath("live", device.id) }, "Live"),
        el("a", { className: "button", href: devicePath("posture", device.id) }, "Posture"),
      ),
    );
  }

  async function refresh() {
    try {
      const page = await api("/api/devices?limit=1000");
      if (page.items.length === 0) {
        showMessage(container, "No devices yet. Start a pipeline with " +
          "'vigil run posture --hub URL --token TOKEN', or run 'make demo' on this machine.");
      } else {
        replaceChildren(container, page.items.map(deviceCard));
      }
      document.getElementById("refreshed").textContent =
        "Last update " + new Date().toLocaleTimeString() + ".";
      document.body.dataset.loaded = "true";
    } catch (error) {
      showMessage(container, "Cannot load the devices: " + error.message, "error");
    }
  }

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
