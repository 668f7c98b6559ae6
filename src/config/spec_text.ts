/**
 * `xferproxy check defaults`: the option spec as an aspera.conf document,
 * every option at its default with a one-line description (`asuserdata -s`).
 * @module
 */

import { type OptionSpec, PROXY, RPROXY, RULE, RULE_DEFAULTS_IN_RPROXY, SERVER } from "./spec.ts";

/** Renders the whole option spec; the output is itself a valid config. */
export function formatOptionSpec(version: string): string {
  const out: string[] = [
    `<!-- Server Options Spec (xferproxy ${version}): the defaults, not the current values -->`,
    `<!-- (ext) marks an xferproxy extension to the Aspera format -->`,
    `<CONF version="2">`,
    `  <server>`,
  ];
  const emit = (depth: number, spec: OptionSpec) => out.push(...optionLines(depth, spec));
  Object.values(SERVER).forEach((s) => emit(4, s));
  out.push(`    <proxy>`);
  Object.values(PROXY).forEach((s) => emit(6, s));
  out.push(`    </proxy>`, `    <rproxy>`);
  Object.values(RPROXY).forEach((s) => emit(6, s));
  RULE_DEFAULTS_IN_RPROXY.forEach((tag) =>
    emit(6, {
      ...RULE[tag],
      description: `Default for every rule: ${lower(RULE[tag].description)}`,
    })
  );
  out.push(
    `      <rules>`,
    `        <rule>${
      comment(
        'one per proxy address; attributes host_ip="ip[/len]" and host_domain="name[:port]" select it, none = all; host_domain is whatever the client sends, never a way to keep partners apart',
      )
    }`,
  );
  Object.values(RULE).forEach((s) => emit(10, s));
  out.push(
    `        ${
      comment(
        "<hosts><host>ip[:port]</host>…</hosts> instead of <host>: round robin over several servers, which share the UDP port; each session is told apart by its source port",
      )
    }`,
    `        </rule>`,
    `      </rules>`,
    `    </rproxy>`,
    `  </server>`,
    `</CONF>`,
  );
  return out.join("\n") + "\n";
}

function optionLines(depth: number, spec: OptionSpec): string[] {
  const pad = " ".repeat(depth);
  const note = comment(
    `${spec.tag}: ${spec.type}. ${spec.description}${spec.extension ? " (ext)" : ""}`,
  );
  if (spec.item) {
    const items = spec.default.split(",").map((v) =>
      `${pad}  <${spec.item}>${escapeXml(v)}</${spec.item}>`
    );
    return [`${pad}<${spec.tag}>${note}`, ...items, `${pad}</${spec.tag}>`];
  }
  return [`${pad}<${spec.tag}>${escapeXml(spec.default)}</${spec.tag}>${note}`];
}

function comment(text: string): string {
  // "--" may not appear inside an XML comment.
  return `  <!-- ${text.replaceAll("--", "- -")} -->`;
}

function lower(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
