/**
 * Aspera's programs on the internal server. A client (ascp, ascp4, async, Connect, ascli) logs
 * in over SSH and starts the *server side* of its transfer there; direction, paths, rate and
 * user travel through the SSH channel, not on that command line. So a server-side command
 * line is one of a few fixed forms, the ones IBM's restricted shell accepts and nothing else
 * (IBM Aspera support, "aspshell Overview", restricted mode,
 * https://support.asperasoft.com/hc/en-us/articles/216125958):
 *
 * ```
 * ascp -S. -V1
 * ascp4 -S.
 * ascp --no-mgmt-port-files -M %d -S. -V1 %1s
 * async -q -S -s-
 * ```
 *
 * (`%d` a number; the trailing `%1s` read as the scanf idiom that catches anything after `-V1`,
 * so nothing may follow, as with the other forms.)
 * `-M` is the management connection ascp opens: "host:port or just a port" (Aspera developer
 * documentation, "FASP management ports"); only a port, on the internal server itself, is
 * allowed here, as in aspshell. Everything else is a client's command line: `--host`, `--user`,
 * `--mode`, `-P`, `-i`, `user@host:path` operands, async's `-r user@host:` would make the
 * internal program connect onward with the internal account's keys. ascmd (the remote
 * browsing of the GUI and CLI) speaks its protocol on stdin/stdout and takes no arguments.
 * `*` in <allowed_commands> lifts all of this.
 * @module
 */

/** A word of a server-side form: literal, or a number in a range. */
type FormWord = string | { readonly min: number; readonly max: number };

const PORT: FormWord = { min: 1, max: 65535 };

/** The server-side command lines of aspshell's restricted mode, after the program name. */
const SERVER_FORMS: Readonly<Record<"ascp" | "ascp4" | "async", readonly (readonly FormWord[])[]>> =
  {
    ascp: [["-S.", "-V1"], ["--no-mgmt-port-files", "-M", PORT, "-S.", "-V1"]],
    ascp4: [["-S."]],
    async: [["-q", "-S", "-s-"]],
  };

/** Why some options are refused, gravest first, to name in the refusal. */
const REASONS: ReadonlyArray<readonly [string, string]> = [
  ["-i", "it names a private key for an onward connection"],
  ["-f", "it names another config file"],
  ["-L", "it writes logs to a directory of the client's choice"],
  ["-R", "it writes logs to a directory of the client's choice"],
  ["--keepalive", "it opens a persistent session that reads commands"],
  ["--keep-alive", "it opens a persistent session that reads commands"],
  ["--proxy", "it sends the transfer through another proxy"],
  ["--file-manifest-path", "it writes a file anywhere the account can"],
  ["--host", "it is a client's option: the program would connect onward"],
  ["--user", "it is a client's option: the program would connect onward"],
  ["--mode", "it is a client's option: the program would connect onward"],
  ["-P", "it is a client's option: the SSH port of an onward connection"],
];

/** Why `ascp ARGS`, `ascp4 ARGS` or `async ARGS` may not run upstream, or undefined when it may. */
export function checkAsperaServer(
  program: "ascp" | "ascp4" | "async",
  args: readonly string[],
): string | undefined {
  const forms = SERVER_FORMS[program];
  if (forms.some((form) => matchesForm(form, args))) return undefined;
  const allowed = forms.map((form) => [program, ...form.map(formText)].join(" ")).join(" or ");
  return `${program} ${whyNot(args, forms)} (only the server side of a transfer: ${allowed})`;
}

function matchesForm(form: readonly FormWord[], args: readonly string[]): boolean {
  return form.length === args.length && form.every((want, i) => {
    const word = args[i] as string;
    if (typeof want === "string") return word === want;
    return /^[1-9]\d{0,4}$/.test(word) && Number(word) >= want.min && Number(word) <= want.max;
  });
}

function formText(word: FormWord): string {
  return typeof word === "string" ? word : "PORT";
}

/** The gravest reason among the arguments, or the first one no form has at its place. */
function whyNot(args: readonly string[], forms: readonly (readonly FormWord[])[]): string {
  const names = args.map(optionName);
  for (const [name, reason] of REASONS) {
    if (names.includes(name)) return `option "${name}" is refused: ${reason}`;
  }
  const remote = args.find((a) => !a.startsWith("-") && /^[^/]*:/.test(a));
  if (remote !== undefined) {
    return `argument "${remote}" is refused: it names a remote host, as a client does`;
  }
  const stray = args.find((word, i) =>
    !forms.some((form) => form[i] !== undefined && matchesForm([form[i] as FormWord], [word]))
  );
  if (stray === undefined) {
    return args.length === 0
      ? "needs its server-side arguments"
      : `arguments "${args.join(" ")}" are incomplete`;
  }
  return `${stray.startsWith("-") ? "option" : "argument"} "${stray}" is not allowed`;
}

/** `--mode=send` → `--mode`, `-P33001` → `-P`, an operand → itself. */
function optionName(word: string): string {
  if (word.startsWith("--")) return word.split("=")[0] as string;
  return word.startsWith("-") && word.length > 1 ? word.slice(0, 2) : word;
}

/** ascmd speaks its protocol on stdin/stdout; it takes no arguments from a client. */
export function checkAscmd(args: readonly string[]): string | undefined {
  return args.length === 0 ? undefined : `ascmd takes no arguments, got "${args[0]}"`;
}
