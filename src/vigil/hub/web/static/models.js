// Models: the registry's versions; admins can promote a version to a stage.
"use strict";

(() => {
  const { el, api, replaceChildren, showMessage, formatBytes } = vigil;
  const table = document.getElementById("models");
  const message = document.getElementById("message");
  const isAdmin = vigil.page().role === "admin";

  function tagList(tags) {
    return Object.entries(tags).map(([key, value]) =>
      el("span", { className: "tag" }, key + ": " + value));
  }

  function stageList(stages) {
    return stages.map((stage) => el("span", { className: "tag stage" }, stage));
  }

  function metricText(value) {
    return typeof value === "number" ? String(+value.toFixed(4)) : JSON.stringify(value);
  }

  function metricList(metrics) {
    return Object.entries(metrics).map(([name, value]) =>
      el("div", {}, name + " " + metricText(value)));
  }

  function modelPath(model) {
    return "/api/models/" + encodeURIComponent(model.name) + "/" + model.version;
  }

  async function promote(model, stage) {
    try {
      await api("/api/models/" + encodeURIComponent(model.name) + "/promote", {
        method: "POST", body: { version: model.version, stage },
      });
      showMessage(message, model.name + ":" + model.version + " is now " + stage + ".", "ok");
      await load();
    } catch (error) {
      const ref = model.name + ":" + model.version;
      showMessage(message, "Cannot promote " + ref + ": " + error.message, "error");
    }
  }

  function promoteForm(model) {
    const stage = el("input", {
      name: "stage", value: "production", size: 10, required: true, list: "stage-names",
      "aria-label": "stage for " + model.name + ":" + model.version,
    });
    return el("form", {
      className: "actions promote",
      onsubmit: (event) => {
        event.preventDefault();
        promote(model, stage.value.trim());
      },
    }, stage, el("button", { type: "submit" }, "Promote"));
  }

  function actions(model) {
    const download = el("a",
      { className: "button", href: modelPath(model) + "/download", download: true }, "Download");
    const promote = isAdmin ? promoteForm(model) : null;
    return el("td", {}, el("div", { className: "actions" }, download, promote));
  }

  function modelRow(model) {
    const details = [model.format, formatBytes(model.size)].filter(Boolean).join(", ");
    return el("tr", { "data-model": model.name + ":" + model.version },
      el("td", {}, el("strong", {}, model.name), el("div", { className: "meta" }, details),
        model.description ? el("div", {}, model.description) : null),
      el("td", {}, String(model.version)),
      el("td", {}, model.task || ""),
      el("td", {}, tagList(model.tags)),
      el("td", {}, metricList(model.metrics)),
      el("td", { "data-field": "stages" }, stageList(model.stages),
        model.latest ? el("span", { className: "tag" }, "latest") : null),
      el("td", { className: "time" }, vigil.formatTime(model.created)),
      actions(model));
  }

  async function load() {
    document.body.dataset.loaded = "false";
    try {
      const page = await api("/api/models?limit=1000");
      if (page.items.length === 0) {
        replaceChildren(table, el("tr", {}, el("td", { colspan: 8 },
          "No models registered. Add one with 'vigil models add FILE --name NAME --task TASK'.")));
      } else {
        replaceChildren(table, page.items.map(modelRow));
      }
    } catch (error) {
      showMessage(message, "Cannot load the models: " + error.message, "error");
    }
    document.body.dataset.loaded = "true";
  }

  document.body.append(el("datalist", { id: "stage-names" },
    el("option", { value: "production" }), el("option", { value: "staging" })));
  load();
})();
