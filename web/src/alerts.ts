// Telling the person that a message came from someone else: a polite live
// region reads it out (sender and text) to screen readers; while the page is
// hidden, a desktop notification and a short sound, each only if the person
// turned it on in the notifications panel. The browser is asked for
// permission only then, never on load. The choices are kept on the device.

import type { Message } from "@chatd/client";

import type { Ctx } from "./context.js";
import { h } from "./dom.js";
import type { AlertPrefs } from "./store.js";

/** Spoken announcements kept in the live region (older ones are dropped). */
const KEEP_ANNOUNCED = 5;

type Permission = NotificationPermission | "unsupported";

function permission(): Permission {
  return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
}

export class Alerts {
  private readonly ctx: Ctx;
  private audio: AudioContext | null = null;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  start(): void {
    // A browser lets a page play sound only after the person interacted with it.
    if (this.prefs.sound) {
      window.addEventListener("pointerdown", this.unlockAudio, { once: true });
      window.addEventListener("keydown", this.unlockAudio, { once: true });
    }
  }

  stop(): void {
    window.removeEventListener("pointerdown", this.unlockAudio);
    window.removeEventListener("keydown", this.unlockAudio);
    void this.audio?.close().catch(() => {});
    this.audio = null;
  }

  /** The live region new messages are announced in. */
  announcer(): HTMLElement {
    return h("div", { id: "announcer", class: "visually-hidden", role: "log", "aria-live": "polite",
      "aria-label": "Incoming messages" });
  }

  /** The choices, in the notifications panel. */
  settings(): HTMLElement {
    return h("fieldset", { id: "alert-settings", class: "alert-settings" });
  }

  renderSettings(): void {
    const el = document.getElementById("alert-settings");
    if (!el) return;
    const prefs = this.prefs;
    const perm = permission();
    el.replaceChildren(...[
      h("legend", {}, "Alerts on this device while chatd is in the background"),
      h("div", { class: "check" },
        h("input", { type: "checkbox", id: "alert-desktop", checked: prefs.desktop && perm === "granted",
          disabled: perm === "unsupported" || perm === "denied",
          onchange: (ev: Event) => void this.setDesktop((ev.target as HTMLInputElement).checked) }),
        h("label", { for: "alert-desktop" }, "Desktop notifications"),
      ),
      perm === "denied"
        ? h("p", { class: "muted small" }, "Notifications are blocked for this site in the browser's settings.")
        : perm === "unsupported" ? h("p", { class: "muted small" }, "This browser cannot show desktop notifications.")
        : null,
      h("div", { class: "check" },
        h("input", { type: "checkbox", id: "alert-sound", checked: prefs.sound,
          onchange: (ev: Event) => this.setSound((ev.target as HTMLInputElement).checked) }),
        h("label", { for: "alert-sound" }, "Sound"),
      ),
    ].filter((x) => x !== null));
  }

  /** A new message arrived (not a replay of one already known). */
  incoming(m: Message): void {
    const { model } = this.ctx;
    if (m.sender.id === model.me.id || m.deleted) return;
    const who = model.name(m.sender.id);
    this.announce(m.conversation_id === model.activeId ? `${who}: ${m.body}` : `New message from ${who}: ${m.body}`);
    if (document.visibilityState !== "hidden") return;
    const prefs = this.prefs;
    if (prefs.desktop && permission() === "granted") this.notify(m, who);
    if (prefs.sound) this.beep();
  }

  private get prefs(): AlertPrefs {
    return this.ctx.store.alerts();
  }

  private announce(text: string): void {
    const el = document.getElementById("announcer");
    if (!el) return;
    el.append(h("p", {}, text));
    while (el.childElementCount > KEEP_ANNOUNCED) el.firstElementChild?.remove();
  }

  private async setDesktop(on: boolean): Promise<void> {
    if (on && permission() === "default") {
      // Asked only now, because the person asked for notifications.
      on = (await Notification.requestPermission()) === "granted";
    }
    this.ctx.store.setAlerts({ ...this.prefs, desktop: on });
    this.renderSettings();
  }

  private setSound(on: boolean): void {
    this.ctx.store.setAlerts({ ...this.prefs, sound: on });
    // Turned on by a click: sound is allowed now; play it once so it is known.
    if (on) this.beep();
  }

  private notify(m: Message, who: string): void {
    try {
      const n = new Notification(who, { body: m.body, tag: `chatd-${m.conversation_id}`, icon: "/favicon.svg" });
      n.onclick = () => {
        window.focus();
        void this.ctx.openConversation(m.conversation_id);
        n.close();
      };
    } catch {
      // Some browsers (Chrome on Android) show notifications only from a service worker.
    }
  }

  private readonly unlockAudio = () => {
    window.removeEventListener("pointerdown", this.unlockAudio);
    window.removeEventListener("keydown", this.unlockAudio);
    this.audioContext();
  };

  private audioContext(): AudioContext | null {
    if (!this.audio) {
      if (typeof AudioContext === "undefined") return null;
      try {
        this.audio = new AudioContext();
      } catch {
        return null;
      }
    }
    if (this.audio.state === "suspended") void this.audio.resume().catch(() => {});
    return this.audio;
  }

  /** A short, soft tone. */
  private beep(): void {
    const ctx = this.audioContext();
    if (!ctx) return;
    const t = ctx.currentTime;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(t);
    osc.stop(t + 0.32);
  }
}
