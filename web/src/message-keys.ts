// The message list from the keyboard. It is one tab stop (a roving tabindex:
// the current message has tabindex 0, the others -1, and the buttons and
// links inside messages are out of the tab order); the arrow keys, Home and
// End move between messages; Enter, the context-menu key or Shift+F10 opens
// a small menu with the focused message's actions (its own buttons and
// links: Edit, Delete, Retry, Discard, Open link), Escape closes it.

import type { Ctx } from "./context.js";
import { h } from "./dom.js";

/** A stop in the list: a message, a pending message, "Load older messages". */
const ITEM = "[data-item]";
/** What a message's menu offers: the controls in its footer and the links in its text. */
const ACTIONS = ".meta button, .body a";

export class MessageKeys {
  private readonly ctx: Ctx;
  /** The focus key of the item the list's tab stop is on (null: the newest). */
  private current: string | null = null;
  /** The focus key of the item whose menu is open. */
  private menuFor: string | null = null;
  private conversation: string | null = null;
  /** The context-menu key opened our menu: the browser's own menu that follows is not wanted. */
  private keyOpenedMenu = false;

  constructor(ctx: Ctx) {
    this.ctx = ctx;
  }

  /** Keyboard handling for the list element. */
  listeners(): Record<string, EventListener> {
    return {
      onkeydown: (ev: Event) => this.onKeyDown(ev as KeyboardEvent),
      onfocusin: (ev: Event) => this.onFocusIn(ev as FocusEvent),
      onfocusout: (ev: Event) => this.onFocusOut(ev as FocusEvent),
      oncontextmenu: (ev: Event) => {
        if (!this.keyOpenedMenu) return;
        this.keyOpenedMenu = false;
        ev.preventDefault();
      },
    };
  }

  /** After each render: the tab stop, the controls out of the tab order, an open menu again. */
  decorate(box: HTMLElement): void {
    if (this.conversation !== this.ctx.model.activeId) {
      this.conversation = this.ctx.model.activeId;
      this.current = null;
      this.menuFor = null;
    }
    const items = [...box.querySelectorAll<HTMLElement>(ITEM)];
    const stop = items.find((el) => el.dataset.focusKey === this.current) ?? items.at(-1);
    for (const el of items) el.tabIndex = el === stop ? 0 : -1;
    for (const el of box.querySelectorAll<HTMLElement>(`${ITEM} :is(${ACTIONS})`)) el.tabIndex = -1;
    const open = items.find((el) => el.dataset.focusKey === this.menuFor);
    if (open && this.actions(open).length > 0) open.append(this.menu(open));
    else this.menuFor = null;
  }

  /** Where focus goes when the element that had it is gone after a render. */
  tabStop(box: HTMLElement): HTMLElement | null {
    return box.querySelector<HTMLElement>(`${ITEM}[tabindex="0"]`);
  }

  private onKeyDown(ev: KeyboardEvent): void {
    const t = ev.target as HTMLElement;
    if (t.getAttribute("role") === "menuitem") {
      this.onMenuKey(ev, t);
      return;
    }
    if (!t.matches(ITEM) || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const box = ev.currentTarget as HTMLElement;
    const items = [...box.querySelectorAll<HTMLElement>(ITEM)];
    const i = items.indexOf(t);
    let next: HTMLElement | undefined;
    switch (ev.key) {
      case "ArrowDown":
        next = items[i + 1];
        break;
      case "ArrowUp":
        next = items[i - 1];
        break;
      case "Home":
        next = items[0];
        break;
      case "End":
        next = items.at(-1);
        break;
      case "F10":
        if (!ev.shiftKey) return;
        this.keyOpenedMenu = this.openMenu(t);
        break;
      case "ContextMenu":
        this.keyOpenedMenu = this.openMenu(t);
        break;
      case "Enter":
        if (t instanceof HTMLButtonElement) return; // "Load older messages": its own click
        this.openMenu(t);
        break;
      default:
        return;
    }
    ev.preventDefault();
    if (next) this.moveTo(items, next);
  }

  private onMenuKey(ev: KeyboardEvent, t: HTMLElement): void {
    const menu = t.closest<HTMLElement>('[role="menu"]');
    const item = menu?.closest<HTMLElement>(ITEM);
    if (!menu || !item) return;
    const entries = [...menu.querySelectorAll<HTMLElement>('[role="menuitem"]')];
    const i = entries.indexOf(t);
    const n = entries.length;
    switch (ev.key) {
      case "ArrowDown":
        entries[(i + 1) % n]?.focus();
        break;
      case "ArrowUp":
        entries[(i - 1 + n) % n]?.focus();
        break;
      case "Home":
        entries[0]?.focus();
        break;
      case "End":
        entries.at(-1)?.focus();
        break;
      case "Escape":
      case "Tab":
        this.closeMenu(item);
        break;
      default:
        return;
    }
    ev.preventDefault();
    ev.stopPropagation();
  }

  private onFocusIn(ev: FocusEvent): void {
    const t = ev.target as HTMLElement;
    if (t.matches(ITEM)) this.current = t.dataset.focusKey ?? null;
  }

  /** Focus moved elsewhere (a click, another control): the menu closes. */
  private onFocusOut(ev: FocusEvent): void {
    if (!this.menuFor) return;
    const to = ev.relatedTarget as HTMLElement | null;
    const menu = (ev.currentTarget as HTMLElement).querySelector('[role="menu"]');
    if (to && menu && !menu.contains(to)) {
      this.menuFor = null;
      menu.remove();
    }
  }

  private moveTo(items: HTMLElement[], next: HTMLElement): void {
    for (const el of items) el.tabIndex = el === next ? 0 : -1;
    this.current = next.dataset.focusKey ?? null;
    next.focus();
  }

  private actions(item: HTMLElement): HTMLElement[] {
    return [...item.querySelectorAll<HTMLElement>(ACTIONS)].filter((el) => !el.closest('[role="menu"]'));
  }

  /** Opens the focused item's menu; false when it has no actions. */
  private openMenu(item: HTMLElement): boolean {
    if (this.actions(item).length === 0) return false;
    item.querySelector('[role="menu"]')?.remove();
    this.menuFor = item.dataset.focusKey ?? null;
    const menu = this.menu(item);
    item.append(menu);
    menu.querySelector<HTMLElement>('[role="menuitem"]')?.focus();
    return true;
  }

  private closeMenu(item: HTMLElement): void {
    this.menuFor = null;
    item.querySelector('[role="menu"]')?.remove();
    item.focus();
  }

  private menu(item: HTMLElement): HTMLElement {
    const name = item.getAttribute("aria-label") ?? "message";
    return h("div", { role: "menu", class: "msg-menu", "aria-label": `Actions for ${name}` },
      ...this.actions(item).map((a, i) => h("button", {
        type: "button", role: "menuitem", tabindex: -1, "data-focus-key": `menu-${i}`,
        onclick: () => {
          this.closeMenu(item);
          a.click();
        },
      }, a instanceof HTMLAnchorElement ? `Open link ${a.textContent ?? ""}` : (a.textContent ?? ""))));
  }
}
