// Passkeys: the browser's WebAuthn calls around the console's JSON endpoints
// (app/console/passkeys.py). Needs a browser with PublicKeyCredential.parse*FromJSON.
(function () {
  "use strict";

  function show(box, message) {
    if (!box) return;
    box.hidden = false;
    box.textContent = message;
  }

  async function post(url, body, headers) {
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json" }, headers),
      body: JSON.stringify(body || {}),
    });
    const data = await answer.json().catch(function () { return {}; });
    if (!answer.ok) throw new Error(data.detail || "The passkey was refused.");
    return data;
  }

  function supported() {
    return window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON;
  }

  const login = document.querySelector("[data-passkey-login]");
  if (login) {
    const box = document.getElementById("passkey-error");
    if (!supported()) { login.hidden = true; }
    login.addEventListener("click", async function () {
      const headers = { "X-Login-CSRF": login.dataset.loginCsrf };
      try {
        const options = await post("/console/login/passkey/options", {}, headers);
        const credential = await navigator.credentials.get({
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
        });
        const done = await post(
          "/console/login/passkey",
          { credential: credential.toJSON(), next: login.dataset.next },
          headers,
        );
        window.location.assign(done.redirect);
      } catch (error) {
        show(box, error.message || "No passkey was used.");
      }
    });
  }

  const add = document.querySelector("[data-passkey-add]");
  if (add) {
    const box = document.getElementById("passkey-error");
    if (!supported()) { add.hidden = true; }
    add.addEventListener("click", async function () {
      const headers = { "X-CSRF-Token": add.dataset.csrf };
      const name = document.getElementById("f-passkey-name");
      try {
        const options = await post("/console/account/passkeys/options", {}, headers);
        const credential = await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
        });
        await post(
          "/console/account/passkeys",
          { credential: credential.toJSON(), name: name ? name.value : "Passkey" },
          headers,
        );
        window.location.reload();
      } catch (error) {
        show(box, error.message || "No passkey was created.");
      }
    });
  }
})();
