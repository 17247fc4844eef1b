"""Hyperas scripts read as searches: the ``{{...}}`` templates found, named and compiled, never executed.

A Hyperas script is Python with templates such as ``Dropout({{uniform(0, 1)}})`` or
``optimizer={{choice(['adam', 'sgd'])}}`` in its ``create_model`` function (see Hyperas's README).
:func:`parse_script` scans the text with :mod:`tokenize` (so ``{{`` inside strings and comments is
not a template), reads each template's arguments with :func:`ast.literal_eval`, replaces each
template with a placeholder and parses the rest with :mod:`ast`. It never imports or runs the script.

Names follow Hyperas (``hyperas.optim.hyperparameter_names``): the identifier right before the
``=`` or ``(`` that the template follows (``Dropout({{...}})`` -> ``Dropout``, ``rate={{...}}`` ->
``rate``, ``model.add(Dense({{...}}))`` -> ``Dense``); a template with no such identifier takes the
previous template's name; repeated names get suffixes in order: ``Dense``, ``Dense_1``, ``Dense_2``.

Distributions: Hyperas's are hyperopt's ``hp`` functions, so their arguments are hyperopt's:
``loguniform(low, high)`` and ``qloguniform(low, high, q)`` take the bounds as LOGS (the language
takes real units: they are converted with ``exp``), ``randint(upper)`` is ``[0, upper)``
(``randint(low, high)`` also works). Choice options that are not plain scalars (``Dropout(0.5)``,
``(3, 3)``, ``[1, 2]``) are kept as source text: the configuration holds the text and the worker puts it
in the script as written. Scalar options (str, int, float, bool, None) are values.

The search document of a script: ``script`` holds the source and ``params`` the space derived
from it (see :func:`script_params`); ``validate`` derives ``params`` again from ``script``.
"""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from dataclasses import dataclass
from typing import Any

from .errors import ErrorList, FieldError, SpecError
from .limits import MAX_PARAMETERS

SCRIPT_LOC = "script"
PLACEHOLDER = "_hyperas_template_{}_"
REQUIRED_FUNCTIONS = ("data", "create_model")
SCALAR_TYPES = (str, int, float, bool, type(None))

_NUMERIC = {
    # hyperas name: (language name, positional argument names)
    "uniform": ("uniform", ("low", "high")),
    "quniform": ("quniform", ("low", "high", "q")),
    "loguniform": ("loguniform", ("low", "high")),
    "qloguniform": ("qloguniform", ("low", "high", "q")),
    "normal": ("normal", ("mu", "sigma")),
    "qnormal": ("qnormal", ("mu", "sigma", "q")),
    "lognormal": ("lognormal", ("mu", "sigma")),
    "qlognormal": ("qlognormal", ("mu", "sigma", "q")),
    "uniformint": ("uniformint", ("low", "high")),
}
DISTRIBUTIONS = ("choice", "pchoice", "randint", *_NUMERIC)
"""Every distribution a template may use (Hyperas's ``hyperas.distributions``)."""

_NAME_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|\()\s*$")


@dataclass(frozen=True)
class Template:
    """One ``{{...}}`` of a script.

    ``start``/``end``: character offsets of the whole template in the source; ``line``: its first
    line (1-based). ``distribution`` is the language's name, ``args`` its arguments (for a choice:
    the option values, or their source texts when ``expressions``). ``text``: the inside, as written.
    """

    name: str
    distribution: str
    args: tuple[Any, ...]
    start: int
    end: int
    line: int
    text: str
    expressions: bool = False
    probabilities: tuple[float, ...] = ()

    def param(self) -> dict[str, Any]:
        """The template as a distribution of the language (a ``params`` entry)."""
        if self.distribution == "choice":
            options = [{"literal": o} if isinstance(o, str) and o in _DIST_KEYS else o for o in self.args]
            if self.probabilities:
                return {"pchoice": [[p, o] for p, o in zip(self.probabilities, options, strict=True)]}
            return {"choice": options}
        return {self.distribution: list(self.args)}

    def source_of(self, value: Any) -> str:
        """The Python text that replaces this template for a sampled ``value``."""
        if self.distribution == "choice" and self.expressions:
            if not isinstance(value, str) or value not in self.args:
                raise ValueError(f"{self.name}: {value!r} is not one of the template's options")
            return value
        return repr(value)


_DIST_KEYS = frozenset(
    {"choice", "pchoice", "randint", "uniformint", "literal", *(n for n, _ in _NUMERIC.values())}
)


@dataclass(frozen=True)
class Script:
    """A parsed Hyperas script: its source and its templates in source order."""

    source: str
    templates: tuple[Template, ...]

    def params(self) -> dict[str, Any]:
        """The ``params`` section: ``{name: distribution}`` in template order."""
        return {t.name: t.param() for t in self.templates}

    def render(self, config: dict[str, Any]) -> str:
        """The source with each template replaced by its value in ``config`` ({name: value}).

        Line numbers are kept: the value is put in parentheses padded with the template's newlines.
        """
        out: list[str] = []
        pos = 0
        for t in self.templates:
            if t.name not in config:
                raise ValueError(f"no value for parameter {t.name!r}")
            out.append(self.source[pos : t.start])
            newlines = self.source.count("\n", t.start, t.end)
            out.append("(" + t.source_of(config[t.name]) + "\n" * newlines + ")")
            pos = t.end
        out.append(self.source[pos:])
        return "".join(out)


def _offsets(source: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(source):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _find_templates(source: str, errors: ErrorList) -> list[tuple[int, int, int]]:
    """(start, end, line) of every ``{{ ... }}`` outside strings and comments."""
    line_starts = _offsets(source)

    def offset(pos: tuple[int, int]) -> int:
        return line_starts[pos[0] - 1] + pos[1]

    found: list[tuple[int, int, int]] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        try:  # the parser says where an unclosed bracket opened; the tokenizer only where the file ended
            ast.parse(source)
        except SyntaxError as syn:
            errors.add(SCRIPT_LOC, f"line {syn.lineno}: syntax error: {syn.msg}")
            return found
        except (ValueError, RecursionError, MemoryError):
            pass
        line = exc.args[1][0] if len(exc.args) > 1 and isinstance(exc.args[1], tuple) else "?"
        errors.add(SCRIPT_LOC, f"line {line}: {exc.args[0]}")
        return found
    i = 0
    while i < len(tokens) - 1:
        tok, nxt = tokens[i], tokens[i + 1]
        if tok.type == tokenize.OP and tok.string == "{" and nxt.string == "{" and nxt.start == tok.end:
            depth = 0
            j = i
            while j < len(tokens):
                s = tokens[j].string if tokens[j].type == tokenize.OP else ""
                depth += s in ("{", "[", "(")
                depth -= s in ("}", "]", ")")
                if depth == 0:
                    break
                j += 1
            if j >= len(tokens) or j == i + 1:
                errors.add(SCRIPT_LOC, f"line {tok.start[0]}: unclosed template '{{{{'")
                return found
            close = tokens[j]
            inner_close = tokens[j - 1]
            if not (inner_close.string == "}" and inner_close.end == close.start):
                errors.add(SCRIPT_LOC, f"line {tok.start[0]}: a template '{{{{...}}}}' must end with '}}}}'")
            else:
                found.append((offset(tok.start), offset(close.end), tok.start[0]))
            i = j + 1
            continue
        i += 1
    return found


def _literal(node: ast.expr, line: int, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"line {line}: {what} must be a literal number") from None


def _number(value: Any, line: int, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"line {line}: {what} must be a finite number, got {value!r}")
    return value


def _read_template(text: str, line: int, source: str) -> tuple[str, tuple[Any, ...], bool, tuple[float, ...]]:
    """(distribution, args, expressions, probabilities) of the inside of a template; ValueError if bad."""
    try:
        expr = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(
            f"line {line}: template {{{{{text.strip()}}}}} is not an expression: {exc.msg}"
        ) from None
    if not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Name | ast.Attribute):
        raise ValueError(f"line {line}: a template must call a distribution, e.g. {{{{uniform(0, 1)}}}}")
    fname = expr.func.id if isinstance(expr.func, ast.Name) else expr.func.attr
    if fname not in DISTRIBUTIONS:
        raise ValueError(
            f"line {line}: unknown distribution {fname!r}; expected one of {', '.join(DISTRIBUTIONS)}"
        )
    if any(isinstance(a, ast.Starred) for a in expr.args) or any(k.arg is None for k in expr.keywords):
        raise ValueError(f"line {line}: {fname}: no *args or **kwargs in a template")
    if fname in ("choice", "pchoice"):
        if len(expr.args) != 1 or expr.keywords:
            raise ValueError(f"line {line}: {fname} takes one list of options")
        options = expr.args[0]
        if not isinstance(options, ast.List | ast.Tuple) or not options.elts:
            raise ValueError(f"line {line}: {fname} needs a non-empty list of options")
        probabilities: tuple[float, ...] = ()
        elts = list(options.elts)
        if fname == "pchoice":
            probs = []
            opts = []
            for e in elts:
                if not isinstance(e, ast.Tuple | ast.List) or len(e.elts) != 2:
                    raise ValueError(f"line {line}: pchoice options are (probability, option) pairs")
                probs.append(
                    float(_number(_literal(e.elts[0], line, "a probability"), line, "a probability"))
                )
                opts.append(e.elts[1])
            probabilities, elts = tuple(probs), opts
        texts = [ast.get_source_segment(text.strip(), e) or "" for e in elts]
        values: list[Any] = []
        plain = True
        for e in elts:
            try:
                v = ast.literal_eval(e)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                plain = False
                break
            if not isinstance(v, SCALAR_TYPES) or (isinstance(v, float) and not math.isfinite(v)):
                plain = False
                break
            values.append(v)
        if plain:
            return "choice", tuple(values), False, probabilities
        if len(set(texts)) != len(texts):
            raise ValueError(f"line {line}: {fname} has the same option twice")
        return "choice", tuple(texts), True, probabilities
    # numeric: positional or keyword arguments, hyperopt's names
    if fname == "randint":
        given = [_literal(a, line, "an argument of randint") for a in expr.args]
        kw = {k.arg: _literal(k.value, line, "an argument of randint") for k in expr.keywords}
        if "upper" in kw:
            given.append(kw.pop("upper"))
        if "low" in kw or "high" in kw:
            given = [kw.pop("low", 0), kw.pop("high", None)]
        if kw or len(given) not in (1, 2) or given[-1] is None:
            raise ValueError(f"line {line}: randint takes (upper) or (low, high)")
        nums = [_number(g, line, "an argument of randint") for g in given]
        low, high = (0, nums[0]) if len(nums) == 1 else (nums[0], nums[1])
        return "randint", (low, high), False, ()
    lang, names = _NUMERIC[fname]
    if len(expr.args) > len(names):
        raise ValueError(f"line {line}: {fname} takes ({', '.join(names)})")
    args: dict[str, Any] = dict(
        zip(names, (_literal(a, line, f"an argument of {fname}") for a in expr.args), strict=False)
    )
    for k in expr.keywords:
        if k.arg not in names or k.arg in args:
            raise ValueError(
                f"line {line}: {fname}: unexpected argument {k.arg!r}; it takes ({', '.join(names)})"
            )
        args[k.arg] = _literal(k.value, line, f"an argument of {fname}")
    missing = [n for n in names if n not in args]
    if missing:
        raise ValueError(f"line {line}: {fname} needs {', '.join(missing)}")
    nums = [_number(args[n], line, f"{fname}'s {n}") for n in names]
    if fname in ("loguniform", "qloguniform"):
        # hyperopt's bounds are logs; the language's are real units
        if max(abs(nums[0]), abs(nums[1])) > 700:
            raise ValueError(f"line {line}: {fname}: bounds are logs (hyperopt's convention); |bound| <= 700")
        nums[0], nums[1] = math.exp(nums[0]), math.exp(nums[1])
    return lang, tuple(nums), False, ()


def _name_before(source: str, start: int) -> str | None:
    head = source[max(0, start - 200) : start]
    if head.rstrip().endswith(("==", "!=", "<=", ">=")):
        return None
    m = _NAME_BEFORE.search(head)
    return m.group(1) if m else None


def _placeholder(source: str, spans: list[tuple[int, int, int]]) -> str:
    out: list[str] = []
    pos = 0
    for k, (start, end, _) in enumerate(spans):
        out.append(source[pos:start])
        out.append("(" + PLACEHOLDER.format(k) + "\n" * source.count("\n", start, end) + ")")
        pos = end
    out.append(source[pos:])
    return "".join(out)


def parse_script(source: str) -> Script:
    """Parse a Hyperas script; raise SpecError (locations ``script``, messages with line numbers)."""
    errors = ErrorList()
    if "\x00" in source:
        raise SpecError.single(SCRIPT_LOC, "the script contains a NUL character")
    spans = _find_templates(source, errors)
    errors.raise_if_any()
    replaced = _placeholder(source, spans)
    try:
        tree = ast.parse(replaced, filename="script.py")
    except SyntaxError as exc:
        raise SpecError.single(SCRIPT_LOC, f"line {exc.lineno}: syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SpecError.single(SCRIPT_LOC, f"cannot parse: {exc}") from None
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for required in REQUIRED_FUNCTIONS:
        if required not in functions:
            sig = "data()" if required == "data" else "create_model(x_train, y_train, x_test, y_test)"
            errors.add(SCRIPT_LOC, f"needs a top-level function {sig} (Hyperas's structure)")
    model_fn = functions.get("create_model")
    inside: set[int] = set()
    if model_fn is not None:
        for node in ast.walk(model_fn):
            if isinstance(node, ast.Name) and node.id.startswith("_hyperas_template_"):
                inside.add(int(node.id.removeprefix("_hyperas_template_").rstrip("_")))
    templates: list[Template] = []
    used: set[str] = set()
    previous: str | None = None
    for k, (start, end, line) in enumerate(spans):
        text = source[start + 2 : end - 2]
        if model_fn is not None and k not in inside:
            errors.add(
                SCRIPT_LOC, f"line {line}: templates are read only inside create_model (as Hyperas does)"
            )
            continue
        try:
            dist, args, expressions, probs = _read_template(text, line, source)
        except ValueError as exc:
            errors.add(SCRIPT_LOC, str(exc))
            continue
        base = _name_before(source, start) or previous or "param"
        previous = base
        name, n = base, 0
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        templates.append(Template(name, dist, args, start, end, line, text, expressions, probs))
    if len(templates) > MAX_PARAMETERS:
        errors.add(SCRIPT_LOC, f"{len(templates)} templates; at most {MAX_PARAMETERS}")
    if not spans and not errors.errors:
        errors.add(SCRIPT_LOC, "no {{...}} templates found: nothing to search")
    errors.raise_if_any()
    return Script(source, tuple(templates))


def script_max_evals(source: str) -> int | None:
    """The ``max_evals=N`` of the script's ``optim.minimize(...)`` call (a default for ``max_trials``), or
    None. Read from the syntax tree only (the templates replaced), never run."""
    try:
        spans = _find_templates(source, ErrorList())
        tree = ast.parse(_placeholder(source, spans))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fname = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if fname != "minimize":
                continue
            for k in node.keywords:
                if k.arg == "max_evals" and isinstance(k.value, ast.Constant):
                    value = k.value.value
                    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                        return value
    return None


def script_params(source: str) -> dict[str, Any]:
    """The ``params`` section of a script's search document."""
    return parse_script(source).params()


def script_errors(source: str) -> list[FieldError]:
    """The problems of a script ([] when it parses)."""
    try:
        parse_script(source)
    except SpecError as exc:
        return exc.errors
    return []
