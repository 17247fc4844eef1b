"""The Hyperas script parser: templates found, named as Hyperas names them, compiled to a search space."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hyperhive import search_spaces as ss
from hyperhive.search_spaces.hyperas import parse_script

README = (Path(__file__).parent / "scripts" / "readme_example.py.txt").read_text()


def script(body: str, data: str = "def data():\n    return 1, 2, 3, 4\n") -> str:
    return data + "\n\ndef create_model(x_train, y_train, x_test, y_test):\n" + body


def test_readme_example_names_and_distributions_as_hyperas_gives_them() -> None:
    s = parse_script(README)
    assert [(t.name, t.distribution) for t in s.templates] == [
        ("Dropout", "uniform"),
        ("Dense", "choice"),
        ("Activation", "choice"),
        ("Dropout_1", "uniform"),
        ("Dropout_2", "choice"),  # the conditional: no name of its own, so the previous one (Hyperas's rule)
        ("add", "choice"),
        ("optimizer", "choice"),
        ("batch_size", "choice"),
    ]
    assert [t.line for t in s.templates] == [50, 51, 52, 53, 56, 61, 68, 71]
    expr = s.templates[5]
    assert expr.expressions and expr.args == ("Dropout(0.5)", "Activation('linear')")


def test_every_distribution_compiles_with_hyperopts_conventions() -> None:
    body = (
        "    a = {{choice([1, 'x', None])}}\n"
        "    b = {{uniform(-1, 1)}}\n"
        "    c = {{quniform(0, 10, 2)}}\n"
        "    d = {{loguniform(-5, 0)}}\n"
        "    e = {{qloguniform(low=0, high=3, q=1)}}\n"
        "    f = {{normal(0, 1)}}\n"
        "    g = {{qnormal(0, 4, 1)}}\n"
        "    h = {{lognormal(0, 1)}}\n"
        "    i = {{qlognormal(0, 1, 1)}}\n"
        "    j = {{randint(5)}}\n"
        "    k = {{pchoice([(0.25, 'p'), (0.75, 'q')])}}\n"
        "    return {'loss': 0}\n"
    )
    spec = ss.validate({"name": "all", "max_trials": 3, "script": script(body)})
    p = spec.params
    assert p["a"] == {"choice": [1, "x", None]}
    assert p["b"] == {"uniform": [-1, 1]}
    assert p["c"] == {"quniform": [0, 10, 2]}
    # hyperopt's loguniform takes logs: exp(-5)..exp(0) in the language's real units
    assert p["d"]["loguniform"] == pytest.approx([math.exp(-5), 1.0])
    assert p["e"]["qloguniform"] == pytest.approx([1.0, math.exp(3), 1])
    assert p["f"] == {"normal": [0, 1]}
    assert p["g"] == {"qnormal": [0, 4, 1]}
    assert p["h"] == {"lognormal": [0, 1]}
    assert p["i"] == {"qlognormal": [0, 1, 1]}
    assert p["j"] == {"randint": [0, 5]}
    assert p["k"] == {"pchoice": [[0.25, "p"], [0.75, "q"]]}
    for seed in range(20):
        v = spec.sample(seed)["params"]
        assert math.exp(-5) <= v["d"] <= 1.0 and 0 <= v["j"] < 5 and v["a"] in (1, "x", None)


def test_names_keyword_and_assignment_and_dedup() -> None:
    body = (
        "    model.add(Dense({{choice([256, 512, 1024])}}))\n"
        "    model.add(Dense(units={{choice([8, 16])}}))\n"
        "    model.add(Dense({{choice([1, 2])}}))\n"
        "    model.add(Dropout(rate = {{uniform(0, 1)}}))\n"
        "    x = {{uniform(0, 1)}}\n"
        "    return {'loss': x}\n"
    )
    names = [t.name for t in parse_script(script(body)).templates]
    assert names == ["Dense", "units", "Dense_1", "rate", "x"]


def test_templates_in_strings_and_comments_are_not_templates() -> None:
    body = (
        "    # a comment mentioning {{uniform(0, 1)}}\n"
        "    s = '{{choice([1, 2])}}'\n"
        "    t = f'{{{{x}}}}'\n"
        "    r = {{uniform(0, 1)}}\n"
        "    return {'loss': r}\n"
    )
    s = parse_script(script(body))
    assert [t.name for t in s.templates] == ["r"]
    rendered = s.render({"r": 0.5})
    assert "s = '{{choice([1, 2])}}'" in rendered and "r = (0.5)" in rendered


def test_nested_braces_and_multiline_template_keep_line_numbers() -> None:
    body = (
        "    a = {{choice([\n        {'k': 1},\n        {'k': 2},\n    ])}}\n"
        "    b = {{uniform(0, 1)}}\n    return {'loss': b}\n"
    )
    s = parse_script(script(body))
    assert s.templates[0].expressions and s.templates[0].args == ("{'k': 1}", "{'k': 2}")
    rendered = s.render({"a": "{'k': 2}", "b": 0.25})
    assert rendered.count("\n") == script(body).count("\n")
    line_b = script(body).splitlines().index("    b = {{uniform(0, 1)}}")
    assert rendered.splitlines()[line_b] == "    b = (0.25)"


def test_conditional_template_is_a_parameter_and_render_takes_the_branch() -> None:
    body = "    if {{choice(['three', 'four'])}} == 'four':\n        extra = 1\n    return {'loss': 0}\n"
    s = parse_script(script(body))
    (t,) = s.templates
    assert t.name == "param" and t.args == ("three", "four")
    assert "if ('four') == 'four':" in s.render({"param": "four"})


def test_expression_options_render_their_source_only() -> None:
    body = "    model.add({{choice([Dropout(0.5), Activation('linear')])}})\n    return {'loss': 0}\n"
    s = parse_script(script(body))
    assert "model.add((Dropout(0.5)))" in s.render({"add": "Dropout(0.5)"})
    with pytest.raises(ValueError):
        s.render({"add": "__import__('os').system('x')"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    x = {{uniform(0, 1)}}\n    return {'loss' x}\n", "line 7: syntax error"),
        ("    x = {{uniform(0)}}\n    return {'loss': x}\n", "line 6: uniform needs high"),
        ("    x = {{uniform(0, a)}}\n", "line 6: an argument of uniform must be a literal"),
        ("    x = {{gauss(0, 1)}}\n", "line 6: unknown distribution 'gauss'"),
        ("    x = {{choice([])}}\n", "line 6: choice needs a non-empty list"),
        ("    x = {{uniform(0, 1)\n", "line 6: syntax error: '{' was never closed"),
        ("    return {'loss': 0}\n", "no {{...}} templates"),
    ],
)
def test_bad_scripts_are_refused_with_the_line(body: str, message: str) -> None:
    with pytest.raises(ss.SpecError) as err:
        ss.validate({"name": "bad", "max_trials": 2, "script": script(body)})
    assert message in str(err.value)
    assert err.value.errors[0].loc == "script"


def test_missing_functions_and_templates_outside_create_model() -> None:
    with pytest.raises(ss.SpecError, match=r"create_model\(x_train"):
        parse_script("def data():\n    return {{uniform(0, 1)}}\n")
    src = (
        "def data():\n    return {{uniform(0, 1)}}\n\n"
        "def create_model(a, b, c, d):\n    return {'loss': {{uniform(0, 1)}}}\n"
    )
    with pytest.raises(ss.SpecError, match="line 2: templates are read only inside create_model"):
        parse_script(src)
    with pytest.raises(ss.SpecError, match="needs a top-level function data"):
        parse_script("def create_model(a, b, c, d):\n    return {{uniform(0, 1)}}\n")


def test_document_keeps_the_script_and_refuses_other_trial_definitions() -> None:
    src = script("    return {'loss': {{uniform(0, 1)}}}\n")
    spec = ss.validate({"name": "s", "max_trials": 2, "script": src, "objective": {"mode": "min"}})
    assert spec.script == src and spec.objective_metric == "loss"
    again = ss.validate(spec.to_document())
    assert again.params == spec.params
    with pytest.raises(ss.SpecError) as err:
        ss.validate(
            {"name": "s", "max_trials": 2, "script": src, "model": {"layers": []}, "params": {"x": 1}}
        )
    locs = {e.loc for e in err.value.errors}
    assert {"model", "params"} <= locs
