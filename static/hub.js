// crm-hub's pages: the buttons call the JSON API with the session cookie and the page's CSRF
// token; the live stream (a WebSocket) brings new timeline entries and the screen pop. Text a
// client wrote never goes into innerHTML from here: entries come rendered (escaped) by the hub.
"use strict";

(function () {
  const body = document.body;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const text = (key) => body.dataset["text" + key] || "";

  function toast(message, action) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.replaceChildren(document.createTextNode(message));
    if (action) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = action.label;
      button.addEventListener("click", action.run);
      box.append(" ", button);
    }
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(() => { box.hidden = true; }, action ? 15000 : 4000);
  }

  async function api(method, path, data) {
    const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    const response = await fetch(path, init);
    const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (answer.error && answer.error.message) || text("Failed");
      throw new Error(message);
    }
    return answer;
  }

  function showError(dialog, error) {
    const slot = dialog.querySelector(".error");
    if (slot) { slot.textContent = error.message; slot.hidden = false; }
    else toast(error.message);
  }

  // ---- the card ------------------------------------------------------------------------------

  const card = document.getElementById("card");
  const clientId = card ? Number(card.dataset.client) : null;
  const timeline = document.getElementById("timeline");

  async function refreshEntries(ids) {
    if (!timeline || !ids.length) return;
    const response = await fetch(`/clients/${clientId}/entries?ids=${ids.join(",")}`,
      { credentials: "same-origin" });
    if (!response.ok) return;
    const holder = document.createElement("template");
    holder.innerHTML = await response.text();  // rendered and escaped by the hub
    for (const li of holder.content.querySelectorAll("li.entry")) {
      const old = timeline.querySelector(`li.entry[data-id="${li.dataset.id}"]`);
      if (old) old.replaceWith(li);
      else timeline.prepend(li);
      li.classList.add("fresh");
    }
  }

  function entryIdOf(event) {
    const entry = event.interaction;
    if (!entry || !clientId) return null;
    const owner = entry.client_id ?? (event.client && event.client.id) ?? event.client_id;
    return Number(owner) === clientId ? entry.id : null;
  }

  if (timeline) {
    timeline.addEventListener("click", async (e) => {
      const more = e.target.closest("#more");
      if (more) {
        const response = await fetch(
          `/clients/${clientId}/entries?cursor=${encodeURIComponent(more.dataset.cursor)}`,
          { credentials: "same-origin" });
        const holder = document.createElement("template");
        holder.innerHTML = await response.text();
        more.closest("li").replaceWith(holder.content);
        return;
      }
      const retry = e.target.closest("button.retry");
      if (retry) {
        try {
          await api("POST", `/api/interactions/${retry.dataset.id}/retry`);
          await refreshEntries([Number(retry.dataset.id)]);
        } catch (error) { toast(error.message); }
      }
    });
  }

  const fields = document.getElementById("card-fields");
  if (fields) {
    fields.addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = new FormData(fields);
      const lines = (name) => String(form.get(name) || "").split("\n").map((s) => s.trim())
        .filter(Boolean);
      const custom = {};
      for (const [key, value] of form.entries()) {
        if (key.startsWith("field:")) custom[key.slice(6)] = String(value) || null;
      }
      const newKey = String(form.get("new-field-key") || "").trim();
      if (newKey) custom[newKey] = String(form.get("new-field-value") || "");
      const manager = String(form.get("manager_id") || "");
      try {
        const saved = await api("PATCH", `/api/clients/${clientId}`, {
          name: String(form.get("name") || ""), status: String(form.get("status")),
          manager_id: manager ? Number(manager) : null, phones: lines("phones"),
          emails: lines("emails"),
          telegram: lines("telegram").map((t) => (/^\d+$/.test(t) ? Number(t) : t)),
          fields: custom,
        });
        document.getElementById("client-name").textContent = saved.name || "—";
        toast(text("Saved"));
        if (newKey) location.reload();
      } catch (error) { toast(error.message); }
    });
  }

  function dialogFor(buttonId, dialogId, onOpen) {
    const button = document.getElementById(buttonId);
    const dialog = document.getElementById(dialogId);
    if (!button || !dialog) return null;
    button.addEventListener("click", async () => {
      const slot = dialog.querySelector(".error");
      if (slot) slot.hidden = true;
      dialog.showModal();
      if (onOpen) await onOpen(dialog);
    });
    return dialog;
  }

  const callButton = document.getElementById("btn-call");
  if (callButton) {
    callButton.addEventListener("click", async () => {
      callButton.disabled = true;
      try {
        const entry = await api("POST", `/api/clients/${clientId}/call`, {});
        await refreshEntries([entry.id]);
      } catch (error) { toast(error.message); }
      finally { callButton.disabled = false; }
    });
  }

  // Send offer: pick a template and a channel, see exactly what goes out, send.
  const offerDialog = dialogFor("btn-offer", "offer-dialog", async (dialog) => {
    const select = dialog.querySelector("#offer-template");
    if (!select.options.length) {
      try {
        const list = await api("GET", "/api/templates");
        for (const t of list.items) {
          const option = document.createElement("option");
          option.value = t.name;
          option.textContent = t.title || t.name;
          select.append(option);
        }
        if (!list.items.length) showError(dialog, new Error(text("NoTemplates")));
      } catch (error) { showError(dialog, error); }
    }
    await previewOffer();
  });

  async function previewOffer() {
    if (!offerDialog) return;
    const name = offerDialog.querySelector("#offer-template").value;
    const box = offerDialog.querySelector("#offer-preview");
    if (!name) return;
    try {
      const shown = await api("GET",
        `/api/templates/${encodeURIComponent(name)}/preview?client_id=${clientId}`);
      box.querySelector(".subject").textContent = shown.subject;
      box.querySelector(".text").textContent = shown.text;
      offerDialog.querySelector(".error").hidden = true;
    } catch (error) { showError(offerDialog, error); }
  }

  if (offerDialog) {
    offerDialog.querySelector("#offer-template").addEventListener("change", previewOffer);
    offerDialog.querySelector("#offer-send").addEventListener("click", async () => {
      try {
        const entry = await api("POST", `/api/clients/${clientId}/offers`, {
          template: offerDialog.querySelector("#offer-template").value,
          channel: offerDialog.querySelector("#offer-channel").value,
        });
        offerDialog.close();
        await refreshEntries([entry.id]);
      } catch (error) { showError(offerDialog, error); }
    });
  }

  // Remind me: in an hour, tomorrow morning, or a picked time.
  const remindDialog = dialogFor("btn-remind", "remind-dialog");
  if (remindDialog) {
    const save = async (payload) => {
      try {
        await api("POST", `/api/clients/${clientId}/reminders`, {
          text: remindDialog.querySelector("#remind-text").value, ...payload,
        });
        remindDialog.close();
        toast(text("Saved"));
      } catch (error) { showError(remindDialog, error); }
    };
    remindDialog.querySelector(".remind-in").addEventListener("click", (e) =>
      save({ in_minutes: Number(e.target.dataset.minutes) }));
    remindDialog.querySelector(".remind-tomorrow").addEventListener("click", (e) => {
      const due = new Date();
      due.setDate(due.getDate() + 1);
      due.setHours(Number(e.target.dataset.tomorrow), 0, 0, 0);
      save({ due_at: due.toISOString() });
    });
    remindDialog.querySelector("#remind-save").addEventListener("click", () => {
      const picked = remindDialog.querySelector("#remind-at").value;
      if (!picked) return;
      save({ due_at: new Date(picked).toISOString() });
    });
  }

  const noteDialog = dialogFor("btn-note", "note-dialog");
  if (noteDialog) {
    noteDialog.querySelector("#note-save").addEventListener("click", async () => {
      const area = noteDialog.querySelector("#note-text");
      if (!area.value.trim()) return;
      try {
        const entry = await api("POST", `/api/clients/${clientId}/notes`, { text: area.value });
        area.value = "";
        noteDialog.close();
        await refreshEntries([entry.id]);
      } catch (error) { showError(noteDialog, error); }
    });
  }

  // Merge with…: find the other card, fold it into this one, offer an undo.
  const mergeDialog = dialogFor("btn-merge", "merge-dialog");
  if (mergeDialog) {
    const results = mergeDialog.querySelector("#merge-results");
    let pending = null;
    mergeDialog.querySelector("#merge-search").addEventListener("input", (e) => {
      clearTimeout(pending);
      pending = setTimeout(async () => {
        const q = e.target.value.trim();
        results.replaceChildren();
        if (q.length < 2) return;
        const found = await api("GET", `/api/clients?q=${encodeURIComponent(q)}&limit=10`);
        for (const other of found.items.filter((c) => c.id !== clientId)) {
          const li = document.createElement("li");
          const pick = document.createElement("button");
          pick.type = "button";
          pick.className = "merge-pick";
          pick.dataset.id = other.id;
          pick.textContent = [other.name || "#" + other.id, ...other.phones, ...other.emails]
            .join(" · ");
          li.append(pick);
          results.append(li);
        }
      }, 250);
    });
    results.addEventListener("click", async (e) => {
      const pick = e.target.closest(".merge-pick");
      if (!pick) return;
      try {
        await api("POST", `/api/clients/${clientId}/merge`, { other_id: Number(pick.dataset.id) });
        mergeDialog.close();
        location.reload();  // the card now shows both, with an "Undo" under its fields
      } catch (error) { showError(mergeDialog, error); }
    });
  }

  async function undoMerge(mergeId) {
    try {
      await api("POST", `/api/merges/${mergeId}/undo`);
      location.reload();
    } catch (error) { toast(error.message); }
  }

  for (const button of document.querySelectorAll(".undo-merge")) {
    button.addEventListener("click", () => undoMerge(Number(button.dataset.merge)));
  }

  // ---- my reminders ----------------------------------------------------------------------------

  for (const list of document.querySelectorAll("ul.reminders")) {
    list.addEventListener("click", async (e) => {
      const button = e.target.closest("button.done, button.snooze");
      if (!button) return;
      const id = button.dataset.id;
      try {
        if (button.classList.contains("done")) await api("POST", `/api/reminders/${id}/done`);
        else await api("POST", `/api/reminders/${id}/snooze`,
          { minutes: Number(button.dataset.minutes) });
        const item = button.closest("li");
        if (item.closest("#due-reminders")) bumpBadge(-1);
        item.remove();
      } catch (error) { toast(error.message); }
    });
  }

  function bumpBadge(delta) {
    const badge = document.getElementById("reminder-badge");
    if (!badge) return;
    const count = Math.max(0, Number(badge.dataset.count || 0) + delta);
    badge.dataset.count = String(count);
    badge.textContent = String(count);
    badge.classList.toggle("empty", count === 0);
  }

  // ---- the live stream: screen pop, new entries, reminders ---------------------------------------

  function screenPop(event) {
    const pop = document.getElementById("screen-pop");
    if (!pop) return;
    const client = event.client || {};
    const phone = (event.interaction && event.interaction.meta && event.interaction.meta.phone)
      || (client.phones && client.phones[0]) || "";
    pop.querySelector(".pop-who").textContent = event.created || !client.name
      ? text("NewClient") : client.name;
    pop.querySelector(".pop-number").textContent = phone;
    const link = pop.querySelector(".pop-link");
    link.href = client.id ? `/clients/${client.id}` : "/clients";
    pop.dataset.client = client.id || "";
    pop.hidden = false;
  }

  const pop = document.getElementById("screen-pop");
  if (pop) pop.querySelector(".pop-close").addEventListener("click", () => { pop.hidden = true; });

  function onEvent(event) {
    if (event.type === "call.ringing") screenPop(event);
    if (event.type === "call.answered" || event.type === "call.ended") {
      if (pop && pop.dataset.client && event.client && String(event.client.id) === pop.dataset.client
          && event.type === "call.ended") pop.hidden = true;
    }
    if (event.type === "reminder.due") {
      bumpBadge(1);
      toast(event.reminder && event.reminder.text ? event.reminder.text : "");
    }
    const id = entryIdOf(event);
    if (id !== null) refreshEntries([id]);
    document.dispatchEvent(new CustomEvent("hub:event", { detail: event }));
  }

  function connect(attempt) {
    if (!body.dataset.manager) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/stream`);
    socket.addEventListener("open", () => { attempt = 0; });
    socket.addEventListener("message", (m) => {
      try {
        const event = JSON.parse(m.data);
        if (event.type === "hello") body.dataset.live = "on";
        else onEvent(event);
      } catch (error) { /* a malformed frame is skipped */ }
    });
    socket.addEventListener("close", () => {
      body.dataset.live = "off";
      setTimeout(() => connect(attempt + 1), Math.min(30000, 500 * 2 ** attempt));
    });
  }
  connect(0);
})();
