// Shared helpers of the dashboard pages: API calls, building elements, formatting.
// Values from the API are only ever inserted as text (textContent, attributes), never as HTML.
"use strict";

const vigil = (() => {
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function cookie(name) {
    const prefix = name + "=";
    const found = document.cookie.split("; ").find((part) => part.startsWith(prefix));
    return found ? decodeURIComponent(found.slice(prefix.length)) : "";
  }

  function goToLogin() {
    const next = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(next));
  }

  // Calls the hub's API; state-changing calls carry the CSRF token of the session.
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRF-Token"] = cookie("vigil_csrf");
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (response.status === 401 && !path.startsWith("/api/login")) {
      goToLogin();
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const message = data && data.message ? data.message : response.statusText;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function query(parameters) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(parameters)) {
      if (value !== undefined && value !== null && value !== "") {
        search.set(key, String(value));
      }
    }
    return search.toString();
  }

  // A URL from the API is used only when it stays on this hub (no javascript: or other sites).
  function sameOriginUrl(value) {
    try {
      const url = new URL(String(value), location.origin);
      return url.origin === location.origin ? url.pathname + url.search : null;
    } catch {
      return null;
    }
  }

  // Builds an element; children that are not nodes become text nodes.
  function el(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) {
        continue;
      }
      if (name === "className") {
        element.className = value;
      } else if (name === "href" || name === "src") {
        const url = sameOriginUrl(value);
        if (url !== null) {
          element.setAttribute(name, url);
        }
      } else if (name.startsWith("on")) {
        element.addEventListener(name.slice(2), value);
      } else {
        element.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) {
        continue;
      }
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function replaceChildren(parent, ...children) {
    parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }

  // kind: "notice" (neutral), "ok" (something worked) or "error".
  function showMessage(target, text, kind = "notice") {
    const role = kind === "error" ? "alert" : "status";
    replaceChildren(target, el("p", { className: "notice " + kind, role }, text));
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) {
      return "n/a";
    }
    if (seconds < 59.5) {
      return Math.round(seconds) + " s";
    }
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) {
      return minutes + " min";
    }
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  function formatPercent(share) {
    return share === null || share === undefined ? "n/a" : Math.round(share * 100) + "%";
  }

  function formatRelative(timestamp, now = Date.now() / 1000) {
    if (timestamp === null || timestamp === undefined) {
      return "never";
    }
    const seconds = Math.max(0, now - timestamp);
    if (seconds < 5) {
      return "just now";
    }
    if (seconds < 60) {
      return Math.floor(seconds) + " s ago";
    }
    if (seconds < 3600) {
      return Math.floor(seconds / 60) + " min ago";
    }
    if (seconds < 86400) {
      return Math.floor(seconds / 3600) + " h ago";
    }
    const days = Math.floor(seconds / 86400);
    return days === 1 ? "1 day ago" : days + " days ago";
  }

  function formatTime(timestamp) {
    return new Date(timestamp * 1000).toLocaleString(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function formatBytes(size) {
    if (size === null || size === undefined) {
      return "";
    }
    const units = ["B", "KB", "MB", "GB"];
    let value = size;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  function timeZone() {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  }

  async function logout() {
    try {
      await api("/api/logout", { method: "POST" });
    } finally {
      location.assign("/login");
    }
  }

  function setUpHeader() {
    const button = document.getElementById("logout");
    if (button) {
      button.addEventListener("click", logout);
    }
  }

  document.addEventListener("DOMContentLoaded", setUpHeader);

  return {
    ApiError, api, query, el, replaceChildren, showMessage, sameOriginUrl,
    formatDuration, formatPercent, formatRelative, formatTime, formatBytes, timeZone, cookie,
    page: () => document.body.dataset,
  };
})();
