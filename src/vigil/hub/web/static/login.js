// Login: posts the form to the API, then goes back to the page that asked for it.
"use strict";

(() => {
  const form = document.getElementById("login");
  const message = document.getElementById("message");

  // Only a path on this hub is followed after login, never another site.
  function nextPage() {
    const next = vigil.page().next || "/";
    return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await vigil.api("/api/login", {
        method: "POST",
        body: { username: form.elements.username.value, password: form.elements.password.value },
      });
      location.assign(nextPage());
    } catch (error) {
      const text = error.status === 401 ? "Wrong user name or password." : error.message;
      vigil.showMessage(message, text, "error");
      form.elements.password.value = "";
      button.disabled = false;
    }
  });
})();
