"""The PowerShell subset of Teams runbooks, parsed (`ps_parser`) and run (`ps_evaluator`): what each
construct evaluates to, and where."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.ps_evaluator import (
    BoundArgument,
    Hashtable,
    Invocation,
    NamedArgument,
    Unmodelled,
    Value,
    bind_arguments,
    run_script,
)
from simulator.tenant.ps_parser import parse, quote_double, quote_single


def plain(value: Value | NamedArgument) -> object:
    """A Value as plain Python: arrays as lists, hashtables as dicts, -Name as ('-Name', value)."""
    if isinstance(value, NamedArgument):
        return ("-" + value.name, None if value.value is None else plain(value.value))
    if isinstance(value.data, tuple):
        return [plain(v) for v in value.data]
    if isinstance(value.data, Hashtable):
        return {item.key: plain(item.value) for item in value.data.items}
    return value.data


def run(text: str) -> tuple[list[Invocation], list[list[NamedArgument | Value]], dict[str, Value]]:
    invocations: list[Invocation] = []
    arguments: list[list[NamedArgument | Value]] = []

    def invoke(invocation: Invocation) -> Value:
        invocations.append(invocation)
        arguments.append(invocation.arguments())
        return Value(f"<{invocation.name}>", invocation.position)

    variables = run_script(parse(text, "t.ps1"), invoke)
    return invocations, arguments, variables


def args_of(text: str) -> list[object]:
    _, arguments, _ = run(text)
    return [plain(a) for a in arguments[-1]]


def syntax_error(text: str) -> TenantError:
    with pytest.raises(TenantError) as caught:
        run(text)
    return caught.value


ARGUMENT_TABLE = [
    # (what, script, evaluated arguments of the last command)
    ("bare word is a string", "X sbc1.contoso.com", ["sbc1.contoso.com"]),
    ("bare integer is a number", "X -Priority 3", [("-Priority", None), 3]),
    ("single quotes do not interpolate", "$a = 1\nX '$a and `n'", ["$a and `n"]),
    ("doubled single quote escapes", "X 'it''s'", ["it's"]),
    ("single-quoted string may span lines", "X 'a\nb'", ["a\nb"]),
    ("double quotes interpolate a variable", '$u = "US"\nX "$u only"', ["US only"]),
    ("braced variable name", '$u = "US"\nX "${u}A"', ["USA"]),
    ("subexpression in a string", '$h = @{N = "x"}\nX "[$($h.N)]"', ["[x]"]),
    ("member after a variable in a string is text", '$h = @{N = "x"}\nX "$h.N"',
     ["System.Collections.Hashtable.N"]),
    ("backtick escapes in double quotes", 'X "a`"b`$c``d`te"', ['a"b$c`d\te']),
    ("doubled double quote escapes", 'X "say ""hi"""', ['say "hi"']),
    ("dollar not followed by a name is text", 'X "cost $ 5 and $"', ["cost $ 5 and $"]),
    ("regex with $ anchors and $1 in single quotes", r"X -Pattern '^(\d{4})$' -Translation '+1425555$1'",
     [("-Pattern", None), r"^(\d{4})$", ("-Translation", None), "+1425555$1"]),
    ("typographic quotes are quotes", "X \u201cUS and Canada\u201d \u2018x\u2019", ["US and Canada", "x"]),
    ("$true $false $null", "X $true $FALSE $Null", [True, False, None]),
    ("switch without value", "X -InMemory", [("-InMemory", None)]),
    ("switch with colon value", "X -Enabled:$false", [("-Enabled", False)]),
    ("colon value with a space", "X -Enabled: $true", [("-Enabled", True)]),
    ("comma array of bare words", "X -List a.b, c.d,e", [("-List", None), ["a.b", "c.d", "e"]]),
    ("comma may end a line", "X -List 'a',\n  'b'", [("-List", None), ["a", "b"]]),
    ("@() array", 'X @("a","b")', [["a", "b"]]),
    ("@() spanning lines without commas", 'X @(\n "a"\n "b"\n)', [["a", "b"]]),
    ("empty @()", "X @()", [[]]),
    ("parenthesised array", 'X ("a", "b")', [["a", "b"]]),
    ("hashtable add", 'X @{Add="US and Canada"}', [{"Add": "US and Canada"}]),
    ("hashtable with array value", 'X @{Replace="International","US and Canada"}',
     [{"Replace": ["International", "US and Canada"]}]),
    ("hashtable keys separated by ; and newline", "X @{add='a'; Remove = 'b'\n  replace='c'}",
     [{"add": "a", "Remove": "b", "replace": "c"}]),
    ("hashtable with quoted key", "X @{'Add'='a'}", [{"Add": "a"}]),
    ("number keeps its spelling when a string is wanted", "X +14255550100", [14255550100]),
    ("negative number", "X -5", [-5]),
    ("variable holding a cmdlet's output", "$nr = New-Rule -InMemory\nX @{Add=$nr}", [{"Add": "<New-Rule>"}]),
    ("member access on a hashtable", '$h = @{Identity = "x"}\nX $h.identity', ["x"]),
    ("scoped variable is the same variable", "$global:g = 'v'\nX $g $script:g", ["v", "v"]),
    ("variable glued into a bare word", "$d = 'contoso.com'\nX sbc1.$d", ["sbc1.contoso.com"]),
    ("backtick escape in a bare word", "X a`,b", ["a,b"]),
    ("hash inside a bare word is text", "X a#b", ["a#b"]),
    ("script block is kept as text", "X { $_.Name -eq 'x' }", ["<block>"]),
]


@pytest.mark.parametrize(("what", "script", "expected"), ARGUMENT_TABLE, ids=[row[0] for row in ARGUMENT_TABLE])
def test_argument_evaluates_to(what: str, script: str, expected: list[object]) -> None:
    got = args_of(script)
    got = ["<block>" if type(g).__name__ == "ScriptBlock" else g for g in got]
    assert got == expected


SPLAT = """$params = @{
    Identity = "sbc1.contoso.com"; SipSignalingPort = 5061
    Enabled  = $true
}
New-CsOnlinePSTNGateway @params -MaxConcurrentSessions 10
"""


def test_splatting_a_hashtable_gives_named_arguments_at_their_keys() -> None:
    _, arguments, _ = run(SPLAT)
    named = [(a.name, None if a.value is None else plain(a.value), a.position.line, a.position.column, a.explicit) for a in arguments[0]
             if isinstance(a, NamedArgument)]
    assert named == [
        ("Identity", "sbc1.contoso.com", 2, 5, True),
        ("SipSignalingPort", 5061, 2, 36, True),
        ("Enabled", True, 3, 5, True),
        ("MaxConcurrentSessions", None, 5, 33, False),
    ]


def test_splatting_an_array_gives_positional_arguments() -> None:
    assert args_of("$a = 'x', 'y'\nX @a") == ["x", "y"]


STRUCTURE_TABLE = [
    # (what, script, [(cmdlet, line, column, pipeline index)])
    ("backtick continues a command", "A -X 1 `\n  -Y 2\nB", [("A", 1, 1, 0), ("B", 3, 1, 0)]),
    ("backtick with CRLF", "A -X 1 `\r\n  -Y 2\r\nB", [("A", 1, 1, 0), ("B", 3, 1, 0)]),
    ("semicolons separate statements", "A; B ;C", [("A", 1, 1, 0), ("B", 1, 4, 0), ("C", 1, 7, 0)]),
    ("line comment", "# A\nB # C\n", [("B", 2, 1, 0)]),
    ("block comment across lines", "<# A\nB #> C\n<##>D", [("C", 2, 6, 0), ("D", 3, 5, 0)]),
    ("comment after a backtick line", "A `\n -X 1 # note\nB", [("A", 1, 1, 0), ("B", 3, 1, 0)]),
    ("pipeline", "Get-CsOnlineUser x | select Name, Policy",
     [("Get-CsOnlineUser", 1, 1, 0), ("select", 1, 22, 1)]),
    ("pipe may end a line", "A |\n  B", [("A", 1, 1, 0), ("B", 2, 3, 1)]),
    ("assignment from a cmdlet", "$nr1 = New-CsVoiceNormalizationRule -InMemory",
     [("New-CsVoiceNormalizationRule", 1, 8, 0)]),
    # A nested command runs when the outer one evaluates its arguments (unmodelled: never).
    ("command inside a hashtable value", "X @{Add = New-Thing}", [("X", 1, 1, 0), ("New-Thing", 1, 11, 0)]),
    ("byte-order mark is ignored", "\ufeffA", [("A", 1, 2, 0)]),
]


@pytest.mark.parametrize(("what", "script", "expected"), STRUCTURE_TABLE, ids=[row[0] for row in STRUCTURE_TABLE])
def test_commands_are_found_at(what: str, script: str, expected: list[tuple[str, int, int, int]]) -> None:
    invocations, _, _ = run(script)
    assert [(i.name, i.position.line, i.position.column, i.pipeline_index) for i in invocations] == expected


def test_values_carry_line_and_column_of_their_first_character() -> None:
    _, arguments, _ = run("New-CsOnlineVoiceRoute -Identity 'R1' `\n    -OnlinePstnGatewayList sbc1, \"sbc2\"")
    identity, gateways = arguments[0][1], arguments[0][3]
    assert (identity.position.line, identity.position.column) == (1, 34)
    assert [(v.position.line, v.position.column) for v in gateways.data] == [(2, 28), (2, 34)]
    assert arguments[0][2].position == SourcePosition("t.ps1", 2, 5)


def test_literal_assignment_then_use() -> None:
    _, arguments, variables = run('$usage = "US and Canada"\n$n = 4\nX $usage $n')
    assert [plain(a) for a in arguments[0]] == ["US and Canada", 4]
    assert plain(variables["usage"]) == "US and Canada"


def test_variable_value_is_reported_where_it_is_used() -> None:
    _, arguments, _ = run("$u = 'x'\n\nX   $u")
    assert arguments[0][0].position == SourcePosition("t.ps1", 3, 5)


def test_environment_variables_are_unmodelled() -> None:
    assert args_of("X $env:TENANT") == [Unmodelled("$env:TENANT")]


def test_arguments_of_a_command_are_only_evaluated_on_request() -> None:
    # Connect-MicrosoftTeams -Credential $cred: $cred comes from outside the script.
    seen = []
    run_script(parse("Connect-MicrosoftTeams -Credential $cred"), lambda inv: seen.append(inv.name))
    assert seen == ["Connect-MicrosoftTeams"]


ERROR_TABLE = [
    # (what, script, line, column, words in the message)
    ("unterminated single-quoted string", "X -A 'abc\nY", 1, 6, "unterminated string"),
    ("unterminated double-quoted string", 'X\nY -A "abc', 2, 6, "unterminated string"),
    ("unterminated block comment", "A\n  <# x", 2, 3, "#>"),
    ("unterminated hashtable", "X @{Add='a'", 1, 3, "missing '}'"),
    ("unknown variable", "X -A 1 -B $nope", 1, 11, "unknown variable $nope"),
    ("unknown variable inside a string", 'X "a $nope"', 1, 6, "unknown variable $nope"),
    ("unknown splatted variable", "X @nope", 1, 3, "unknown variable $nope"),
    ("backtick followed by spaces", "A -X 1 `  \n -Y 2", 1, 8, "followed by spaces"),
    ("parameter on its own line", "A -X 1\n -Y 2", 2, 2, "backtick missing"),
    ("a while loop", "X\n  while ($true) { X }", 2, 3, "a `while` loop is not supported"),
    ("a do loop", "do { X } until ($x)", 1, 1, "a `do` loop is not supported"),
    ("a for loop", "for ($i = 0; $i -lt 3; $i++) { X }", 1, 1, "a `for` loop is not supported"),
    ("a function", "function Add-User { X }", 1, 1, "defining a `function` is not supported"),
    ("try/catch", "try { X } catch { Y }", 1, 1, "error handling (`try`)"),
    ("switch", "switch ($x) { 'a' { X } }", 1, 1, "a `switch` statement is not supported"),
    ("else without if", "X\nelse { Y }", 2, 1, "`else` without an `if`"),
    ("foreach without a variable", "foreach (x in $y) { X }", 1, 10, "expected the loop variable"),
    ("foreach without in", "foreach ($u of $y) { X }", 1, 13, "expected 'in'"),
    ("if without a body", "if ($x) X", 1, 9, "expected '{' to open the body of if"),
    ("unterminated foreach body", "$l = 1\nforeach ($u in $l) {\n X", 3, 3, "expected '}' before end of file"),
    ("arithmetic", "$x = 1 + 2", 1, 8, "the '+' operator is not supported"),
    ("-replace", "$x = 'a' -replace 'a', 'b'", 1, 10, "the -replace operator is not supported"),
    ("an unknown operator", "$x = 'a' -foo 'b'", 1, 10, "unknown operator -foo"),
    ("method call", "$x = 'a'\n$y = $x.ToLower()", 2, 8, "method calls"),
    ("unterminated here-string", "$x = @'\nhi\n", 1, 6, "unterminated here-string"),
    ("text on a here-string's first line", "$x = @\"hi\n\"@", 1, 8, "starts on the line after"),
    ("unclosed index", "$a = 1, 2\nX $a[0", 2, 7, "expected ']'"),
    ("missing hashtable =", "X @{Add 'a'}", 1, 9, "expected '='"),
    ("duplicate hashtable key", "X @{Add='a'; add='b'}", 1, 14, "duplicate key"),
    ("unquoted word in an expression", "$x = 'a', b", 1, 11, "quote it"),
    ("missing value after colon", "X -Enabled:", 1, 12, "expected a value after '-Enabled:'"),
    ("unclosed parenthesis", "X ('a'", 1, 7, "expected ')'"),
    ("unclosed @(", "X @('a'", 1, 8, "expected ')' before end of file"),
    ("pipe to nothing", "A |", 1, 4, "expected a command after '|'"),
    ("compound assignment", "$x += 'a'", 1, 4, "'+='"),
    ("call operator", "& $cmd", 1, 1, "call operator"),
    ("running another script", "A\n.\\users.ps1", 2, 1, "running another script"),
    ("dot-sourcing", ". ./users.ps1", 1, 1, "call operator"),
    ("type cast", "$x = [string]1", 1, 6, "type casts"),
    ("splat of a string", "$s = 'x'\nX @s", 2, 3, "cannot splat"),
    ("garbage after a value", "X 'a'b", 1, 6, "right after a value"),
]


@pytest.mark.parametrize(("what", "script", "line", "column", "words"), ERROR_TABLE,
                         ids=[row[0] for row in ERROR_TABLE])
def test_syntax_error_points_at(what: str, script: str, line: int, column: int, words: str) -> None:
    error = syntax_error(script)
    assert error.position == SourcePosition("t.ps1", line, column)
    assert words in error.message
    assert str(error).startswith(f"t.ps1:{line}:{column}: ")


# ---------------------------------------------------------------- binding

def bind(text: str, parameters: list[str], switches: tuple[str, ...] = ()) -> dict[str, BoundArgument]:
    bound: dict[str, BoundArgument] = {}

    def invoke(invocation: Invocation) -> None:
        bound.update(bind_arguments(invocation, parameters, switches))

    run_script(parse(text, "t.ps1"), invoke)
    return bound


def test_binding_is_case_insensitive_and_returns_canonical_names() -> None:
    bound = bind("new-x -IDENTITY a -numberpattern '.*'", ["Identity", "NumberPattern"])
    assert {k: plain(v.value) for k, v in bound.items()} == {"Identity": "a", "NumberPattern": ".*"}


def test_first_positional_argument_is_identity() -> None:
    bound = bind('New-CsOnlineVoiceRoutingPolicy "US Only" -OnlinePstnUsages "US and Canada"',
                 ["Identity", "OnlinePstnUsages"])
    assert plain(bound["Identity"].value) == "US Only"


def test_a_switch_does_not_take_the_next_value() -> None:
    with pytest.raises(TenantError, match="unexpected positional argument 'True'"):
        bind("X -Identity a -InMemory $true", ["Identity", "InMemory"], switches=("InMemory",))
    bound = bind("X -InMemory -Identity a", ["Identity", "InMemory"], switches=("InMemory",))
    assert plain(bound["InMemory"].value) is True


def test_a_non_switch_takes_the_next_value_even_if_boolean() -> None:
    bound = bind("X -Enabled $true", ["Enabled"])
    assert plain(bound["Enabled"].value) is True


BIND_ERRORS = [
    ("unknown parameter", "X -Identity a `\n  -Pirority 1", 2, 3,
     "X has no parameter -Pirority (did you mean -Priority?)"),
    ("a prefix is not a parameter", "X -Prio 1", 1, 3, "X has no parameter -Prio"),
    ("unknown parameter from a splat", "$p = @{\n Identty = 'a' }\nX @p", 2, 2, "no parameter -Identty"),
    ("parameter given twice", "X -Priority 1 -priority 2", 1, 15, "more than once"),
    ("missing value", "X -Identity -Priority 1", 1, 3, "missing a value for -Identity"),
    ("missing value at the end", "X -Priority", 1, 3, "missing a value for -Priority"),
    ("second positional", "X a b", 1, 5, "unexpected positional argument 'b'"),
]


@pytest.mark.parametrize(("what", "script", "line", "column", "message"), BIND_ERRORS,
                         ids=[row[0] for row in BIND_ERRORS])
def test_binding_error_points_at(what: str, script: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TenantError) as caught:
        bind(script, ["Identity", "Priority"])
    assert caught.value.position == SourcePosition("t.ps1", line, column)
    assert message in caught.value.message


# ---------------------------------------------------------------- quoting round trip

# Text as an editor writes it: any character but NUL and the other C0 controls (a script holding
# one is refused; see test_control_characters_are_refused_where_they_stand).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=[
    chr(c) for c in (*range(0x00, 0x09), 0x0b, *range(0x0e, 0x20), 0x7f)]))


@given(_TEXT)
def test_single_quoting_round_trips_any_text(text: str) -> None:
    assert args_of("X " + quote_single(text)) == [text]


@given(_TEXT)
def test_double_quoting_round_trips_any_text(text: str) -> None:
    assert args_of("X " + quote_double(text)) == [text]


@given(st.lists(_TEXT, min_size=2, max_size=4))
def test_quoted_array_round_trips(items: list[str]) -> None:
    assert args_of("X -A " + ", ".join(quote_single(i) for i in items)) == [("-A", None), items]


_RUNBOOK_ALPHABET = st.sampled_from(list("aZ0 \t\n;,|(){}@$-=:'\"`#<>.+*\\/") + ["\u201c", "\u2019", "\r\n"])


@given(st.lists(_RUNBOOK_ALPHABET, max_size=40).map("".join))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_or_fails_with_a_positioned_error(text: str) -> None:
    try:
        run_script(parse(text, "t.ps1"), lambda invocation: (invocation.arguments(), None)[1])
    except TenantError as error:
        assert error.position is not None and error.position.path == "t.ps1"
        assert 1 <= error.position.line <= text.count("\n") + 1


# ---------------------------------------------------------------- the language of runbooks

def calls(text: str) -> list[object]:
    """The evaluated arguments of every command call, in order."""
    _, arguments, _ = run(text)
    return [[plain(a) for a in args] for args in arguments]


LANGUAGE_TABLE = [
    # (what, script, evaluated arguments of every call)
    ("foreach runs the body once per element",
     "$users = 'a', 'b'\nforeach ($u in $users) { X $u }", [["a"], ["b"]]),
    ("foreach over $null runs nothing", "$none = $null\nforeach ($u in $none) { X $u }", []),
    ("foreach over one value runs once", "foreach ($u in 'a') { X $u }", [["a"]]),
    ("hashtable index and member", "$h = @{Name = 'n'; 'k' = 'v'}\nX $h['K'] $h.name", [["v", "n"]]),
    ("array index, negative from the end", "$a = @('x', 'y', 'z')\nX $a[0] $a[-1]", [["x", "z"]]),
    ("index past the end is $null", "$a = 'x', 'y'\nX $a[5]", [[None]]),
    ("array member enumeration", "$a = @{N = 1}, @{N = 2}\nX $a.N $a.Count", [[[1, 2], 2]]),
    ("if takes the first true branch",
     "$n = 5\nif ($n -lt 3) { X small } elseif ($n -le 5) { X medium } else { X large }", [["medium"]]),
    ("else on its own line", "$n = 9\nif ($n -eq 1) {\n X one\n}\nelse {\n X other\n}", [["other"]]),
    ("-eq on text ignores case", "if ('US' -eq 'us') { X yes }", [["yes"]]),
    ("-ceq on text does not", "if ('US' -ceq 'us') { X yes } else { X no }", [["no"]]),
    ("number on the left converts the right", "if (10 -gt '9') { X yes }", [["yes"]]),
    ("-like wildcards", "if ('sbc1.contoso.com' -like 'SBC*.contoso.?om') { X yes }", [["yes"]]),
    ("-notlike", "if ('a' -notlike 'b*') { X yes }", [["yes"]]),
    ("-match is a regular expression", "if ('+14255550100' -match '^\\+1425') { X yes }", [["yes"]]),
    ("-and -or -not", "if ((1 -eq 1) -and -not (2 -eq 3) -or $false) { X yes }", [["yes"]]),
    ("! is -not", "if (!$false) { X yes }", [["yes"]]),
    ("-contains and -in", "$l = 'a', 'b'\nif (($l -contains 'B') -and ('a' -in $l)) { X yes }", [["yes"]]),
    ("a list on the left of -eq filters it", "$l = 'a', 'b', 'a'\nX ($l -eq 'a')", [[["a", "a"]]]),
    ("an empty string is false", "if ('') { X yes } else { X no }", [["no"]]),
    ("a value piped into ForEach-Object", "'a', 'b' | ForEach-Object { X $_ }", [["a"], ["b"]]),
    ("% and $PSItem", "@(1, 2) | % { X $PSItem }", [[1], [2]]),
    ("Where-Object filters", "'ab', 'cd', 'ae' | Where-Object { $_ -like 'a*' } | ForEach-Object { X $_ }",
     [["ab"], ["ae"]]),
    ("Where-Object comparison syntax",
     "@{Site = 'Sea'}, @{Site = 'Red'} | Where-Object Site -eq 'sea' | % { X $_.Site }", [["Sea"]]),
    ("$_ comes back after a nested block",
     "'o' | % { 'i' | % { X $_ }; X $_ }", [["i"], ["o"]]),
    ("a command's output piped on", "A | % { X $_ }", [[], ["<A>"]]),
    ("a command after a pipe runs once per value", "'a', 'b' | Y -P 1", [[("-P", None), 1]] * 2),
    ("here-string expands", "$u = 'US'\n$x = @\"\n$u and `$u\n\"@\nX $x", [["US and $u"]]),
    ("literal here-string", "$x = @'\n$u \"quoted\"\n'@\nX $x", [['$u "quoted"']]),
    ("subexpression member in a string", "$h = @{N = 'x'}\nX \"[$($h.N)]\"", [["[x]"]]),
]


@pytest.mark.parametrize(("what", "script", "expected"), LANGUAGE_TABLE, ids=[row[0] for row in LANGUAGE_TABLE])
def test_runbook_language(what: str, script: str, expected: list[object]) -> None:
    assert calls(script) == expected


def test_a_command_after_a_pipe_gets_each_value_as_piped() -> None:
    invocations, _, _ = run("'a', 'b' | Y")
    assert [(i.name, i.pipeline_index, plain(i.piped)) for i in invocations] == [("Y", 1, "a"), ("Y", 1, "b")]


def test_a_syntax_error_inside_a_block_an_unmodelled_cmdlet_takes_is_raised_only_if_it_runs() -> None:
    run("Invoke-Command { while ($true) { } }")  # not run: no error
    error = syntax_error("'a' | ForEach-Object {\n  while ($true) { } }")
    assert error.position == SourcePosition("t.ps1", 2, 3) and "`while` loop" in error.message


def test_import_csv_reads_relative_to_the_script(tmp_path) -> None:
    (tmp_path / "users.csv").write_text("UserPrincipalName,Policy\nalice@contoso.com,US\n\nbob@contoso.com,Intl\n",
                                        encoding="utf-8")
    script = tmp_path / "run.ps1"
    invocations: list[list[object]] = []
    run_script(parse("Import-Csv users.csv | ForEach-Object { X $_.UserPrincipalName $_.policy }", str(script)),
               lambda invocation: invocations.append([plain(a) for a in invocation.arguments()]))
    assert invocations == [["alice@contoso.com", "US"], ["bob@contoso.com", "Intl"]]


@pytest.mark.parametrize(("csv_text", "script", "line", "column", "words"), [
    (None, "$u = Import-Csv -Path missing.csv", 1, 23, "cannot read CSV file 'missing.csv'"),
    ("A,B\n1,2\n", "Import-Csv users.csv | % {\n X $_.C }", 2, 6, "has no column 'C' (its columns: A, B)"),
], ids=["missing file", "missing column"])
def test_csv_errors_point_at_the_line_that_reads_it(tmp_path, csv_text: str | None, script: str, line: int,
                                                    column: int, words: str) -> None:
    if csv_text is not None:
        (tmp_path / "users.csv").write_text(csv_text, encoding="utf-8")
    path = str(tmp_path / "run.ps1")
    with pytest.raises(TenantError) as caught:
        run_script(parse(script, path), lambda invocation: (invocation.arguments(), None)[1])
    assert caught.value.position == SourcePosition(path, line, column)
    assert words in caught.value.message
