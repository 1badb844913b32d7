// Jinja engine semantics: each template renders what Python jinja2 renders in the chat-template
// environment of HF transformers (trim_blocks, lstrip_blocks, loopcontrols, sandbox), plus error
// reporting and the limits that stop runaway templates.
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "chat/jinja_value.h"
#include "chat/template.h"
#include "common/fixtures.h"

namespace hylo::chat {
namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"J({
    "messages": [
      {"role": "user", "content": "Hi é there", "n": 3, "f": 1.5, "b": true, "z": null, "l": [1, "a", null, 2.0],
       "d": {"k": "v", "n": 1}},
      {"role": "assistant", "content": "  spaced　 ",
       "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": "s"}}}]}],
    "tools": null, "documents": null, "add_generation_prompt": true})J");
  return ctx;
}

struct Case {
  const char* source;
  std::optional<std::string> expected;  // nullopt: an error is expected
  const char* error_fragment = "";
};

// clang-format off
const Case kCases[] = {
    {R"J({{ messages[0].n + 1 }}|{{ messages[0].f * 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 1e20 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.1 + 0.2 }}|{{ 1.0 }}|{{ 1e-5 }}|{{ 0.0001 }}|{{ -0.0 }})J",
     R"J(4|3.0|3|-4|2|3.5|1024|0.5|1e+20|1e+16|1000000000000000.0|0.30000000000000004|1.0|1e-05|0.0001|-0.0)J"},
    {R"J({{ messages[0] }})J",
     R"J({'role': 'user', 'content': 'Hi é there', 'n': 3, 'f': 1.5, 'b': True, 'z': None, 'l': [1, 'a', None, 2.0], 'd': {'k': 'v', 'n': 1}})J"},
    {R"J({{ messages[0]|tojson }})J",
     R"J({"role": "user", "content": "Hi é there", "n": 3, "f": 1.5, "b": true, "z": null, "l": [1, "a", null, 2.0], "d": {"k": "v", "n": 1}})J"},
    {R"J({{ messages[0]|tojson(indent=2) }})J",
     R"J({
  "role": "user",
  "content": "Hi é there",
  "n": 3,
  "f": 1.5,
  "b": true,
  "z": null,
  "l": [
    1,
    "a",
    null,
    2.0
  ],
  "d": {
    "k": "v",
    "n": 1
  }
})J"},
    {R"J({{ messages[0]|tojson(indent=2, sort_keys=true) }})J",
     R"J({
  "b": true,
  "content": "Hi é there",
  "d": {
    "k": "v",
    "n": 1
  },
  "f": 1.5,
  "l": [
    1,
    "a",
    null,
    2.0
  ],
  "n": 3,
  "role": "user",
  "z": null
})J"},
    {R"J({{ messages[0]|tojson(separators=(',', ':')) }})J",
     R"J({"role":"user","content":"Hi é there","n":3,"f":1.5,"b":true,"z":null,"l":[1,"a",null,2.0],"d":{"k":"v","n":1}})J"},
    {R"J({{ messages[0].l|string }}|{{ messages[0].b|string }}|{{ messages[0].z|string }}|{{ messages[0].z }}|{{ none }}|{{ true }})J",
     R"J([1, 'a', None, 2.0]|True|None|None|None|True)J"},
    {R"J({{ messages[1].content|trim }}|{{ messages[1].content.strip() }}|{{ messages[1].content.lstrip() }}|{{ messages[1].content.rstrip() }}|{{ 'xxhixx'.strip('x') }})J",
     R"J(spaced|spaced|spaced　 |  spaced|hi)J"},
    {R"J({{ "a,b,,c".split(",") }}|{{ " a  b ".split() }}|{{ "a b c".split(" ", 1) }}|{{ "a b c".rsplit(" ", 1) }}|{{ "abc".upper() }}|{{ "ABC"|lower }}|{{ "hello world"|title }}|{{ "hELLO"|capitalize }})J",
     R"J(['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a b', 'c']|ABC|abc|Hello World|Hello)J"},
    {R"J({{ messages[0].content[1:3] }}|{{ messages[0].content[::-1] }}|{{ messages[0].content[-3:] }}|{{ messages[0].l[::2] }}|{{ messages[0].l[-1] }}|{{ messages[0].l[10] }}|{{ (1,2,3)[1:] }})J",
     R"J(i |ereht é iH|ere|[1, None]|2.0||(2, 3))J"},
    {R"J({% for m in messages %}{{ loop.index }}/{{ loop.length }}:{{ loop.first }}{{ loop.last }}{{ loop.previtem.role }}{{ loop.nextitem.role }}{{ loop.revindex }} {% endfor %})J", std::nullopt, R"J()J"},
    {R"J({% for k, v in messages[0].d|items %}{{ k }}={{ v }};{% endfor %}{% for k in messages[0].d %}{{ k }}{% endfor %})J",
     R"J(k=v;n=1;kn)J"},
    {R"J({% for x in [] %}a{% else %}empty{% endfor %})J",
     R"J(empty)J"},
    {R"J({% for x in [1,2,3,4] if x is odd %}{{ x }}{{ loop.index }}{{ loop.last }}{% endfor %})J",
     R"J(11False32True)J"},
    {R"J({% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %})J",
     R"J(13)J"},
    {R"J({% set c = 0 %}{% for i in [1,2] %}{% set c = c + 1 %}{{ c }}{% endfor %}{{ c }})J",
     R"J(110)J"},
    {R"J({% set ns = namespace(c=0) %}{% for i in [1,2] %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }})J",
     R"J(3)J"},
    {R"J({% macro m(a, b='x') %}[{{ a }}{{ b }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(1, b=3) }}{{ m(1,2,3) }})J",
     R"J([1x(){}][12(){}][13(){}][12(3,){}])J"},
    {R"J({% macro m(a) %}  {{ a }}  {% endmacro %}{{ m(1)|trim }}|{{ m(2) }}|)J",
     R"J(1|  2  |)J"},
    {R"J({{ 'a' if false }}|{{ 'a' if true else 'b' }}|{{ 'x' ~ 1 ~ none ~ undefinedvar }}|{{ 1 if 0 else 2 if 0 else 3 }})J",
     R"J(|a|x1None|3)J"},
    {R"J({{ undefinedvar }}|{{ undefinedvar is defined }}|{{ undefinedvar|length }}|{{ undefinedvar|default('d') }}|{{ none|default('d') }}|{{ ''|default('d', true) }})J",
     R"J(|False|0|d|None|d)J"},
    {R"J({{ undefinedvar.attr }})J", std::nullopt, R"J('undefinedvar' is undefined)J"},
    {R"J({{ messages[0].missing.attr }})J", std::nullopt, R"J('dict object' has no attribute 'missing')J"},
    {R"J({{ none.attr }}|)J",
     R"J(|)J"},
    {R"J({{ messages[0].z.attr }}|)J",
     R"J(|)J"},
    {R"J({{ 'abc' + 1 }})J", std::nullopt, R"J(can only concatenate str (not "int") to str)J"},
    {R"J({{ 1 + undefinedvar }})J", std::nullopt, R"J('undefinedvar' is undefined)J"},
    {R"J({{ raise_exception('boom: ' ~ 3) }})J", std::nullopt, R"J(boom: 3)J"},
    {R"J({{ [1,2,3]|join(', ') }}|{{ [1,none,'a']|join }}|{{ messages|map(attribute='role')|join('+') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='role')|first }})J",
     R"J(1, 2, 3|1Nonea|user+assistant|1|assistant)J"},
    {R"J({{ [3,1,2]|sort }}|{{ ['b','A','c']|sort }}|{{ [3,1,2]|sort(reverse=true) }}|{{ [1,2,2,3]|unique|list }}|{{ [3,1,2]|max }}|{{ [3,1,2]|min }}|{{ [1,2,3]|sum }}|{{ [1,2,3]|reverse|list }}|{{ 'abc'|reverse }})J",
     R"J([1, 2, 3]|['A', 'b', 'c']|[3, 2, 1]|[1, 2, 3]|3|1|6|[3, 2, 1]|cba)J"},
    {R"J({{ messages[0].d|dictsort }}|{{ {'b':1,'a':2}|dictsort(by='value') }}|{{ {'b':1,'a':2}.items()|list }}|{{ {'b':1,'a':2}.keys()|list }}|{{ {'a':2}.get('a') }}{{ {'a':2}.get('z') }}{{ {'a':2}.get('z', 5) }})J",
     R"J([('k', 'v'), ('n', 1)]|[('b', 1), ('a', 2)]|[('b', 1), ('a', 2)]|['b', 'a']|2None5)J"},
    {R"J({{ 1 is number }}{{ true is number }}{{ true is integer }}{{ 1.5 is float }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is sequence }}{{ {} is sequence }}{{ 'a' is iterable }}{{ none is none }}{{ 1 is odd }}{{ 4 is divisibleby 2 }}{{ 4 is divisibleby(3) }}{{ 'a' in 'cat' }}{{ 1 in [1,2] }}{{ 'k' in {'k':1} }}{{ 3 is in [1,2] }}{{ 'abc' is lower }}{{ undefinedvar is none }}{{ false is false }}{{ 0 is false }})J",
     R"J(TrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueFalseTrueFalseTrueFalse)J"},
    {R"J({{ '%s-%d' % ('a', 3) }})J",
     R"J(a-3)J"},
    {R"J({{ "%s and %s"|format('a', 'b') }})J",
     R"J(a and b)J"},
    {R"J({{ "{} {}".format(1, 'x') }}|{{ "{0}{0}".format('z') }}|{{ "{n}".format(n=5) }})J",
     R"J(1 x|zz|5)J"},
    {R"J({{ "x"|indent(2) }}|{{ "a\nb\n\nc"|indent(2) }}|{{ "a\nb"|indent(2, true) }}|{{ "a\n\nb"|indent(2, blank=true) }})J",
     R"J(x|a
  b

  c|  a
  b|a
  
  b)J"},
    {R"J({{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ range(5, 0, -2)|list }})J",
     R"J([0, 1, 2]|[1, 4, 7]|[5, 3, 1])J"},
    {R"J({{ [1,2] + [3] }}|{{ 'ab' * 3 }}|{{ [0] * 3 }}|{{ 'a' < 'b' }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 5 }}|{{ [1,2] == [1,2] }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ 'a' != 'a' }})J",
     R"J([1, 2, 3]|ababab|[0, 0, 0]|True|True|False|True|True|True|False)J"},
    {R"J({{ 1 < 'a' }})J", std::nullopt, R"J('<' not supported between instances of 'int' and 'str')J"},
    {R"J({{ "tab\there"|tojson }}|{{ "q\"uote\\"|tojson }}|{{ "\u00e9\u2028\x7f\x01"|tojson }}|{{ "\u00e9"|tojson(ensure_ascii=true) }}|{{ "😀"|tojson(ensure_ascii=true) }})J",
     R"J("tab\there"|"q\"uote\\"|"é \u0001"|"\u00e9"|"\ud83d\ude00")J"},
    {R"J({{ ["a'b", 'a"b', "a'\"b", "\n\t\\", "\x00\x7f\xa0\xad\u3000é😀"]|string }})J",
     R"J(["a'b", 'a"b', 'a\'"b', '\n\t\\', '\x00\x7f\xa0\xad\u3000é😀'])J"},
    {R"J({{ {'a': [1, {'b': none}], 'c': (1,)}|string }}|{{ (1,2)|string }}|{{ ()|string }})J",
     R"J({'a': [1, {'b': None}], 'c': (1,)}|(1, 2)|())J"},
    {R"J({{ 1.5|int }}|{{ '42'|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ '3.5'|float }}|{{ 3|float }}|{{ -3|abs }}|{{ 2.567|round(1) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.4|round(0, 'ceil') }})J",
     R"J(1|42|4|0|7|3.5|3.0|3|2.6|2.0|4.0|3.0)J"},
    {R"J({{ 'hello'|length }}|{{ 'héllo'|count }}|{{ [1,2]|length }}|{{ {'a':1}|length }})J",
     R"J(5|5|2|1)J"},
    {R"J({{ 'abc'|first }}|{{ [1,2]|last }}|{{ []|first }}|{{ 'a-b-c'.replace('-', '+') }}|{{ 'a-b-c'|replace('-', '+', 1) }}|{{ 'abcabc'.find('c') }}|{{ 'abcabc'.rfind('c') }}|{{ 'abcabc'.count('bc') }}|{{ 'ab'.startswith(('x', 'a')) }}|{{ 'ab'.endswith('b') }})J",
     R"J(a|2||a+b+c|a+b-c|2|5|2|True|True)J"},
    {R"J({%- set x = 1 -%}
  {{ x }}
  {%+ if true %}yes{% endif %}
    {% if true %}
    indented
    {% endif %}
{# comment #}
after)J",
     R"J(1
  yes    indented
after)J"},
    {R"J(a  {%- if true %}  b  {%- endif %}  c  {{- 'd' -}}  e)J",
     R"J(a  b  cde)J"},
    {R"J(line1
  {% for i in [1,2] %}
    item{{ i }}
  {% endfor %}
end)J",
     R"J(line1
    item1
    item2
end)J"},
    {R"J({% raw %}{{ not parsed }}{% endraw %}|{%- raw -%}  x  {%- endraw -%}|)J",
     R"J({{ not parsed }}|x|)J"},
    {R"J({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 'x') %}{{ t[1] }})J",
     R"J(12x)J"},
    {R"J({% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}up{% endset %}{{ y }})J",
     R"J([block 2]UP)J"},
    {R"J({% filter upper %}hi {{ 'there' }}{% endfilter %})J",
     R"J(HI THERE)J"},
    {R"J({% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }})J",
     R"J(3)J"},
    {R"J({{ messages|selectattr('tool_calls', 'defined')|list|length }}|{{ messages|selectattr('tool_calls')|map(attribute='role')|list }})J",
     R"J(1|['assistant'])J"},
    {R"J({{ messages[1].tool_calls[0].function.arguments|items|list }}|{{ messages[1]['tool_calls'][0]['function']['name'] }})J",
     R"J([('x', 1), ('y', 's')]|f)J"},
    {R"J({{ messages[0].items()|length }}|{{ messages[0]['items'] is defined }})J",
     R"J(8|True)J"},
    {R"J({{ messages.append(1) }})J", std::nullopt, R"J()J"},
    {R"J({{ 10 / 0 }})J", std::nullopt, R"J(division by zero)J"},
    {R"J({{ foo() }})J", std::nullopt, R"J('foo' is undefined)J"},
    {R"J({{ 'abc'|nofilter }})J", std::nullopt, R"J()J"},
    {R"J({% if x %}{% endfor %})J", std::nullopt, R"J()J"},
    {R"J({{ 'unterminated }})J", std::nullopt, R"J()J"},
    {R"J({% set ns = namespace(a=1) %}{{ ns }})J",
     R"J(<Namespace {'a': 1}>)J"},
    {R"J({{ 'x' is sameas 'x' }}{{ none is sameas none }}{{ true is sameas true }})J",
     R"J(TrueTrueTrue)J"},
    {R"J({{ -messages[0].n }}|{{ +messages[0].f }}|{{ not messages }}|{{ messages and 1 }}|{{ [] or 'empty' }}|{{ none or none }})J",
     R"J(-3|1.5|False|1|empty|None)J"},
    {R"J({{ 'é'.upper() }}{{ 'straße'|upper }}{{ 'İ'|lower }}|{{ '  x  '.center(9) }}|{{ 'x'.zfill(3) }}|{{ 'a b'|wordcount }})J",
     R"J(ÉSTRASSEi̇|    x    |00x|2)J"},
    {R"J({{ "\x41\u00e9\101\N" }})J", std::nullopt, R"J()J"},
    {R"J({{ 'abc'[5] }}|{{ 'abc'[-1] }}|{{ messages[0].l[-10] }}|{{ messages[0]['nope'] }}|{{ messages[5] }}|)J",
     R"J(|c||||)J"},
    {R"J({{ messages[0].l|batch(3)|list }})J",
     R"J([[1, 'a', None], [2.0]])J"},
    {R"J({% for a, b in [[1,2],[3,4]] %}{{ a }}{{ b }}{% endfor %}|{% for a, b in {'x': 1}.items() %}{{ a }}{{ b }}{% endfor %})J",
     R"J(1234|x1)J"},
    {R"J({{ [1,2,3][1] }}{{ messages.0.role }})J",
     R"J(2user)J"},
    {R"J({{ "a" "b" }}|{{ 0x1F }}|{{ 1_000 }}|{{ 1.5e3 }}|{{ 0o17 }}|{{ 0b101 }})J",
     R"J(ab|31|1000|1500.0|15|5)J"},
    {R"J({%- for m in messages %}
{%- if m.role == 'user' %}
U: {{ m.content }}
{%- elif m.role == 'assistant' %}
A: {{ m.content }}
{%- else %}
?
{%- endif %}
{%- endfor %})J",
     R"J(U: Hi é thereA:   spaced　 )J"},
    {R"J(  {% if true %}x{% endif %}  )J",
     R"J(x  )J"},
    {R"J(a
  {% if true %}
  b
  {% endif %}
c)J",
     R"J(a
  b
c)J"},
    {R"J(a {% if true %} b {% endif %} c)J",
     R"J(a  b  c)J"},
    {R"J(	{%- if true -%}	x	{%- endif -%}	)J",
     R"J(x)J"},
    {R"J(  {#- comment -#}  x)J",
     R"J(x)J"},
    {R"J(  {# comment #}
x)J",
     R"J(x)J"},
    {R"J(x  {# c #}  y)J",
     R"J(x    y)J"},
    {R"J({{ 'a' }}
  {% if true %}b{% endif %})J",
     R"J(a
b)J"},
    {R"J({% if true %}
{% endif %}
{% if true %}

{% endif %}
end)J",
     R"J(
end)J"},
    {R"J({%+ if true %}x{% endif +%}
y)J",
     R"J(x
y)J"},
    {R"J(  {%+ if true %}x{% endif %})J",
     R"J(  x)J"},
    {R"J({{- ' a ' -}})J",
     R"J( a )J"},
    {R"J(   {{- 'x' }}   {{ 'y' -}}   z)J",
     R"J(x   yz)J"},
    {R"J({% for i in [1,2] -%}
  {{ i }}
{%- endfor %})J",
     R"J(12)J"},
    {R"J({% for i in [1,2] %}
  {{ i }}
{% endfor %})J",
     R"J(  1
  2
)J"},
    {R"J(text {% raw %}  {% if %} {{ x }} {% endraw %} after)J",
     R"J(text   {% if %} {{ x }}  after)J"},
    {R"J(  {% raw %}
  keep
  {% endraw %}
tail)J",
     R"J(
  keep
tail)J"},
    {R"J({{ "{{ not a tag }}" }}|{{ '{% x %}' }}|{{ {'a': {'b': 1}} }}|{{ {'a':1}}})J",
     R"J({{ not a tag }}|{% x %}|{'a': {'b': 1}}|{'a': 1})J"},
    {R"J({% set x = {'a': {'b': [1, {'c': 2}]}} %}{{ x.a.b[1].c }}{{ x['a']['b'][0] }})J",
     R"J(21)J"},
    {R"J({{ 1 }}{{ 2 }}
{{ 3 }})J",
     R"J(12
3)J"},
    {R"J(line with trailing newline at template end)J",
     R"J(line with trailing newline at template end)J"},
    {R"J(a
b)J",
     R"J(a
b)J"},
    {R"J({% if true %}a{% elif false %}b{% else %}c{% endif %}{% if false %}a{% elif 1 %}b{% endif %}{% if none %}{% else %}else{% endif %})J",
     R"J(abelse)J"},
    {R"J({% for x in 'ab' %}{{ x }}{% endfor %}|{% for x in {'k':1,'j':2} %}{{ x }}{% endfor %})J",
     R"J(ab|kj)J"},
    {R"J({% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ loop.depth }}-{% endfor %}{{ loop.index }}{{ loop.depth }};{% endfor %})J",
     R"J(11-21-11;11-21-21;)J"},
    {R"J({% for x in [1,2,3] %}{{ loop.cycle('a', 'b') }}{% endfor %})J",
     R"J(aba)J"},
    {R"J({% macro outer() %}<{{ caller_thing }}{{ inner() }}>{% endmacro %}{% macro inner() %}i{% endmacro %}{{ outer() }})J",
     R"J(<i>)J"},
    {R"J({% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }})J",
     R"J(543210)J"},
    {R"J({% macro rec(n) %}{{ rec(n + 1) }}{% endmacro %}{{ rec(0) }})J", std::nullopt, R"J()J"},
    {R"J({% for x in range(100001) %}{% endfor %})J", std::nullopt, R"J(Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).)J"},
    {R"J({% set l = [1,2,3] %}{{ l|select('odd')|list }}{{ l|reject('odd')|list }}{{ l|select|list }}{{ [0,1,'',none,'a']|select|list }}{{ l|map('string')|join('-') }}{{ ['a','b']|map('upper')|list }})J",
     R"J([1, 3][2][1, 2, 3][1, 'a']1-2-3['A', 'B'])J"},
    {R"J({{ messages|map(attribute='nope')|list }}|{{ messages|map(attribute='nope', default='D')|list }})J",
     R"J([Undefined, Undefined]|['D', 'D'])J"},
    {R"J({{ messages[0].d.n is defined }}{{ messages[0].d.zz is defined }}{{ messages[0]['d']['n'] }})J",
     R"J(TrueFalse1)J"},
    {R"J({{ "abc" is string and "abc" is not mapping }}|{{ not true or true }}|{{ not (true or true) }}|{{ 1 in [1] and 2 not in [1] }})J",
     R"J(True|True|False|True)J"},
    {R"J({{ "x" ~ 1 + 2 }}|{{ 1 + 2 ~ "x" }}|{{ 2 * 3 ~ 4 }}|{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}|{{ 10 - 2 - 3 }}|{{ 100 / 10 / 5 }})J", std::nullopt, R"J(can only concatenate str (not "int") to str)J"},
    {R"J({{ [1, 2, 3,] }}|{{ (1,) }}|{{ (1, 2,) }}|{{ {'a': 1,} }})J",
     R"J([1, 2, 3]|(1,)|(1, 2)|{'a': 1})J"},
    {R"J({{ messages[0].content|truncate(5) }})J",
     R"J(Hi é there)J"},
    {R"J({{ 'Hello'|center(11) }}|{{ 'x'|default }}|{{ 'abc'|list }}|{{ 'a' * 0 }}|{{ [] * 5 }})J",
     R"J(   Hello   |x|['a', 'b', 'c']||[])J"},
    {R"J({{ ''.join(['a', 'b']) }}|{{ ','.join(messages|map(attribute='role')) }}|{{ '-'.join('abc') }})J",
     R"J(ab|user,assistant|a-b-c)J"},
    {R"J({{ 'a\nb\r\nc'.splitlines() }}|{{ 'key=val=x'.partition('=') }}|{{ 'abc'.removeprefix('a') }}|{{ 'x'.ljust(3) }}|{{ 'x'.rjust(3, '*') }})J",
     R"J(['a', 'b', 'c']|('key', '=', 'val=x')|bc|x  |**x)J"},
    {R"J({{ 'ABC'.isupper() }}{{ 'abc'.islower() }}{{ '123'.isdigit() }}{{ 'ab1'.isalnum() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}{{ ''.isspace() }})J",
     R"J(TrueTrueTrueTrueTrueTrueFalse)J"},
    {R"J({{ (0.1 * 3) }}|{{ 1/3 }}|{{ 2/3 }}|{{ 1e-7 }}|{{ 123456789.123 }}|{{ 1e300 * 1e10 }}|{{ -1e300 * 1e10 }})J",
     R"J(0.30000000000000004|0.3333333333333333|0.6666666666666666|1e-07|123456789.123|inf|-inf)J"},
    {R"J({{ [1e300 * 1e10]|tojson }})J",
     R"J([Infinity])J"},
    {R"J({{ 5 // 0 }})J", std::nullopt, R"J(integer division or modulo by zero)J"},
    {R"J({{ 'abc'.index('z') }})J", std::nullopt, R"J(substring not found)J"},
    {R"J({{ [1,2].index(5) }})J", std::nullopt, R"J(5 is not in list)J"},
    {R"J({{ [1,2].index(2) }}{{ [1,2,2].count(2) }})J",
     R"J(12)J"},
    {R"J({% set x = namespace() %}{% set x.a = 1 %}{{ x.a }}{% set y = 3 %}{% set y.a = 1 %})J", std::nullopt, R"J()J"},
    {R"J({{ 'é' < 'z' }}{{ [1, 'a'] < [1, 'b'] }}{{ (1, 2) == (1, 2) }}{{ (1, 2) == [1, 2] }})J",
     R"J(FalseTrueTrueFalse)J"},
    {R"J({{ x | default('a') | upper }}|{{ undefined_thing | default(none) is none }})J",
     R"J(A|True)J"},
    {R"J({% if messages[0].content is string and messages[0].content | length > 3 %}long{% endif %})J",
     R"J(long)J"},
    {R"J({{- "\u00e9" -}}{{ "\U0001F600" }}{{ '\x41' }}{{ "\101" }}{{ '\q' }}{{ 'a\
b' }})J",
     R"J(é😀AA\qab)J"},
    {R"J({% for m in messages if m.role == 'assistant' %}{{ loop.index }}{{ m.role }}{% else %}none{% endfor %})J",
     R"J(1assistant)J"},
    {R"J({{ 'x' if messages[0].nope is defined else 'y' }}|{{ messages[0].nope or 'fallback' }})J",
     R"J(y|fallback)J"},
    {R"J({{ 1 is sameas 1 }}{{ 'ab' is iterable }}{{ 5 is iterable }}{{ none is iterable }}{{ messages[0].d is iterable }}{{ none is sequence }}{{ raise_exception is callable }})J",
     R"J(TrueTrueFalseFalseTrueFalseTrue)J"},
    {R"J({{ [3, 1, 2]|sort|first }}{{ [{'n': 2}, {'n': 1}]|sort(attribute='n')|map(attribute='n')|list }}{{ [{'n': 2}, {'n': 1}]|max(attribute='n') }})J",
     R"J(1[1, 2]{'n': 2})J"},
    {R"J({{ {'b': 2, 'a': 1}|tojson(sort_keys=true) }}{{ [1, [2, {}]]|tojson(indent=1) }}{{ {}|tojson(indent=2) }}{{ []|tojson }})J",
     R"J({"a": 1, "b": 2}[
 1,
 [
  2,
  {}
 ]
]{}[])J"},
    {R"J({{ "x"|tojson(indent="--") }}{{ {"a": [1]}|tojson(indent="\t") }})J",
     R"J("x"{
	"a": [
		1
	]
})J"},
    {R"J({{ messages[0].content|e }}{{ '<&>"\''|escape }})J",
     R"J(Hi é there&lt;&amp;&gt;&#34;&#39;)J"},
    {R"J({%- set content = 'abc' -%}{%- set content = content|trim -%}{{ content }})J",
     R"J(abc)J"},
    {R"J({% set a = 1 %}{% if true %}{% set a = 2 %}{% endif %}{{ a }})J",
     R"J(2)J"},
    {R"J({% for i in [1] %}{% set inner = 5 %}{% endfor %}{{ inner }})J",
     R"J()J"},
    {R"J({{ [1, 2] | length > 1 }})J",
     R"J(True)J"},
    {R"J({%- for message in messages %}{{ message.role }}{%- if not loop.last %},{% endif %}{%- endfor %})J",
     R"J(user,assistant)J"},
    {R"J({% set a = [1, 2] + [3] %}{{ a | join }}{{ a[1:] | join }}{{ a[:-1] }}{{ a[::-1] }}{{ a[::-2] }}{{ a[5:] }}{{ a[-5:1] }})J",
     R"J(12323[1, 2][3, 2, 1][3, 1][][1])J"},
    {R"J({{ 'abc'[::0] }})J", std::nullopt, R"J(slice step cannot be zero)J"},
    {R"J({{ messages[0].content.split(' ')[-1] }}|{{ 'a/b/c'.split('/', maxsplit=1) }}|{{ 'a b'.split(maxsplit=0) }})J",
     R"J(there|['a', 'b/c']|['a b'])J"},
    {R"J({{ '  a  '.strip() ~ '|' ~ 'xxaxx'.lstrip('x') ~ '|' ~ 'xxaxx'.rstrip('x') }})J",
     R"J(a|axx|xxa)J"},
    {R"J({{ "%05.1f|%-4s|%x|%d%%" % (3.14159, 'ab', 255, 7) }}|{{ "%s" % none }}|{{ "%r" % 'q' }})J",
     R"J(003.1|ab  |ff|7%|None|'q')J"},
    {R"J({{ "hello world foo bar"|truncate(9) }}|{{ "hello world foo bar"|truncate(9, true) }}|{{ "hello world foo bar baz qux"|truncate(12, leeway=0) }})J",
     R"J(hello...|hello ...|hello...)J"},
    {R"J(a　 {%- if true %}b{% endif -%}　 c)J",
     R"J(abc)J"},
    {R"J({{-1}}|{{ -1 }}|{{+1}})J",
     R"J(1|-1|1)J"},
    {R"J(x {#- c -#} y {#+ c +#} z)J",
     R"J(xy  z)J"},
    {R"J(	  {% if true %}	x
	{% endif %})J",
     R"J(	x
)J"},
    {R"J(a{% if true %}
b{% endif %}
c{%- if true +%}
d{% endif %})J",
     R"J(abc
d)J"},
    {R"J(  {{ 'v' }}  {% if true %}  w  {% endif %})J",
     R"J(  v    w  )J"},
    {R"J({% if true %}a{% endif %}

{% if true %}b{% endif %})J",
     R"J(a
b)J"},
    {R"J({% macro m() -%}
  body
{%- endmacro %}
[{{ m() }}])J",
     R"J([body])J"},
    {R"J({%- for i in range(3) -%}
{{ i }}{{ ',' if not loop.last }}
{%- endfor -%})J",
     R"J(0,1,2)J"},
    {R"J({% set t = "a\tb" %}{{ t|tojson }}{{ t|string }}{{ t|length }})J",
     R"J("a\tb"a	b3)J"},
    {R"J({{ 'Ünïcode'|lower }}{{ 'ǅ'|lower }}{{ 'ǆ'|upper }}{{ 'ǆ'|title }}{{ 'ﬁne'|upper }}{{ 'ΣΊΣΥΦΟΣ'|lower }}{{ 'ΌΣΟΣ Σ'|lower }})J",
     R"J(ünïcodeǆǄǄFINEσίσυφοςόσος σ)J"},
    {R"J({{ 'hello world'.title() }}{{ "they're bill's"|title }}{{ 'ß'.capitalize() }})J",
     R"J(Hello WorldThey're Bill'sSs)J"},
    {R"J({{ "a\u2028b".splitlines() }}{{ "x\x1cy".split() }}{{ "\u3000x\u3000".strip() }}{{ "\u200bx".strip() }})J",
     R"J(['a', 'b']['x', 'y']x​x)J"},
    {R"J({{ [none, true, 1.5, 'x', [1], {'a': none}]|tojson }})J",
     R"J([null, true, 1.5, "x", [1], {"a": null}])J"},
    {R"J({{ {'a': 1}|items|list }}{{ {'a': 1}.items()|list }}{{ [('a', 1)]|string }})J",
     R"J([('a', 1)][('a', 1)][('a', 1)])J"},
    {R"J({%- set ns = namespace(items=[]) %}{%- for m in messages %}{%- set ns.items = ns.items + [m.role] %}{%- endfor %}{{ ns.items }})J",
     R"J(['user', 'assistant'])J"},
    {R"J({{ messages|length is divisibleby 2 }}{{ (messages|length) is even }})J",
     R"J(TrueTrue)J"},
    {R"J({{ "%s" % [1, 2] }}|{{ "%s %s" % ('a', 'b') }}|{{ "%d items" % 3 }}|{{ "%.2f" % 3.14159 }}|{{ "%5s|%-5s|" % ('a', 'b') }})J",
     R"J([1, 2]|a b|3 items|3.14|    a|b    |)J"},
    {R"J({% for x in messages[0].l %}{{ x is none }},{% endfor %})J",
     R"J(False,False,True,False,)J"},
    {R"J({{ messages[0].l|select('none')|list }}{{ messages[0].l|reject('none')|list }}{{ messages[0].l|select('string')|list }}{{ messages[0].l|select('number')|list }})J",
     R"J([None][1, 'a', 2.0]['a'][1, 2.0])J"},
    {R"J({{ messages[0].d|dictsort(reverse=true) }}{{ messages[0].d.keys()|list }}{{ messages[0].d.values()|list }})J",
     R"J([('n', 1), ('k', 'v')]['k', 'n']['v', 1])J"},
    {R"J({{ messages|selectattr('role', 'in', ['user', 'x'])|list|length }}{{ messages|selectattr('content', 'string')|list|length }})J",
     R"J(12)J"},
    {R"J({{ 'a' ~ none }}{{ none ~ 'a' }}{{ 1 ~ 2 }}{{ [1] ~ {'a': 'b'} }})J",
     R"J(aNoneNonea12[1]{'a': 'b'})J"},
    {R"J({{ messages[0]|length }}{{ messages[0].l|count }}{{ 'xyz'|list|length }})J",
     R"J(843)J"},
    {R"J({% set x = 5 %}{% macro show() %}{{ x }}{% endmacro %}{% set x = 6 %}{{ show() }}{% for x in [7] %}{{ show() }}{% endfor %})J",
     R"J(66)J"},
    {R"J({% macro greet(name, greeting='Hi') %}{{ greeting }} {{ name }}{% endmacro %}{{ greet('A') }}|{{ greet(name='B', greeting='Yo') }}|{{ greet('C', greeting='Hey') }})J",
     R"J(Hi A|Yo B|Hey C)J"},
    {R"J({% if messages[0].content is defined and messages[0].content is not none and messages[0].content %}ok{% endif %})J",
     R"J(ok)J"},
    {R"J({%- if true %}
  {{- ' x ' }}
{%- endif %})J",
     R"J( x )J"},
    {R"J({{ "line\nbreak"|indent(4, true) }})J",
     R"J(    line
    break)J"},
    {R"J({{ 3 is number and 3 is not string }}{{ 'x' is not defined }}{{ undefined_v is not defined }})J",
     R"J(TrueFalseTrue)J"},
    {R"J({{ messages[-1].tool_calls[0].function.arguments.x + 1 }})J",
     R"J(2)J"},
    {R"J({{ (messages|selectattr('role','equalto','assistant')|first).content|trim }})J",
     R"J(spaced)J"},
    {R"J({{ 'abc'|replace('', '-') }}|{{ 'a.b.c'.split('.')|reverse|join('.') }})J",
     R"J(-a-b-c-|c.b.a)J"},
    {R"J({{ [1,2,3]|sum(start=10) }}{{ [{'v': 1}, {'v': 2}]|sum(attribute='v') }}{{ [1.5, 2]|sum }})J",
     R"J(1633.5)J"},
    {R"J({{ 10 % 3 }}{{ -10 % 3 }}{{ 10 % -3 }}{{ 7.5 % 2 }}{{ -7.5 // 2 }}{{ 2 ** 0.5 }}{{ 10 / 4 }}{{ 10 // 4 }})J",
     R"J(12-21.5-4.01.41421356237309512.52)J"},
    {R"J({{ 1 == true }}{{ 0 == false }}{{ 1.0 == true }}{{ none == false }}{{ [] == false }}{{ 'a' in ['a'] }}{{ 1 in [true] }})J",
     R"J(TrueTrueTrueFalseFalseTrueTrue)J"},
    {R"J({{ messages[0].b + 1 }}{{ true + true }}{{ messages[0].b * 3 }})J",
     R"J(223)J"},
    {R"J({% for i in range(3) %}{% if i == 1 %}{% break %}{% endif %}{{ i }}{% else %}no{% endfor %})J",
     R"J(0)J"},
    {R"J({%- set content = '<think>\nr\n</think>\n\nanswer' %}{{ content.split('</think>')[-1].lstrip('\n') }}|{{ content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }})J",
     R"J(answer|r)J"},
    {R"J({{ 'ΌΣΟΣ-ΣΟΣ (ΑΣ'|title }}|{{ 'hello-wORLD <tag'|title }})J",
     R"J(Όσος-Σος (Ασ|Hello-World <Tag)J"},
};
// clang-format on

TEST(Jinja, MatchesPythonJinja2) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.source);
    auto t = Template::parse(c.source);
    Result<std::string> out = t.ok() ? t->render(context()) : Result<std::string>(t.error());
    if (c.expected) {
      ASSERT_TRUE(out.ok()) << out.message();
      EXPECT_EQ(*out, *c.expected);
    } else {
      ASSERT_FALSE(out.ok()) << "rendered: " << *out;
      EXPECT_NE(out.message().find(c.error_fragment), std::string::npos) << out.message();
    }
  }
}

Result<std::string> render(const std::string& source, const jinja::RenderLimits& limits = {}) {
  auto t = Template::parse(source);
  if (!t.ok()) return t.error();
  return t->render(context(), limits);
}

TEST(Jinja, ErrorsNameTheLine) {
  auto r = render("line1\n{{ 'x'|nosuchfilter }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("line 2"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("nosuchfilter"), std::string::npos) << r.message();

  r = render("a\nb\n{% if x %}\nunclosed");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("syntax error"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("endif"), std::string::npos) << r.message();

  r = render("{{ raise_exception('Only user and assistant roles are supported!') }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("Only user and assistant roles are supported!"), std::string::npos);

  r = render("{{ undefined_function(1) }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("'undefined_function' is undefined"), std::string::npos) << r.message();

  for (const char* bad :
       {"{% include 'x' %}", "{% for x in y recursive %}{% endfor %}", "{% break %}", "{{ }}", "{{ (1 }}",
        "{{ 'a' 'b }}", "{% endif %}", "{{ a.0x }}", "\xff{{ 1 }}", "{{ '\\N{DASH}' }}"}) {
    EXPECT_FALSE(render(bad).ok()) << bad;
  }
}

TEST(Jinja, RunawayTemplatesStop) {
  jinja::RenderLimits small;
  small.max_output_bytes = 1 << 16;
  small.max_steps = 100000;
  // Unbounded recursion.
  auto r = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("too deep"), std::string::npos) << r.message();
  // Output growth.
  r = render("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxx' }}{% endfor %}", small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("limit"), std::string::npos) << r.message();
  r = render("{{ 'x' * 1000000000 }}", small);
  EXPECT_FALSE(r.ok());
  // Work without output.
  r = render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("steps"), std::string::npos) << r.message();
  // Deep nesting in the source.
  EXPECT_FALSE(render("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").ok());
  EXPECT_FALSE(render("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}").ok());
  EXPECT_FALSE(render("{{ " + std::string(5000, '-') + "1 }}").ok());
  EXPECT_FALSE(render("{{ x" + std::string(20000, '.') + " }}").ok());
  std::string nested;
  for (int i = 0; i < 1000; ++i) nested += "{% if true %}";
  EXPECT_FALSE(render(nested).ok());
  // Long flat chains parse iteratively but may not build deep trees.
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_FALSE(render(chain + " }}").ok());
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 100000; ++i) filters += "|trim";
  EXPECT_FALSE(render(filters + " }}").ok());
  // Macros recursing through deep expressions hit the stack budget, not the real stack.
  std::string deep =
      "{% macro f(n) %}{{ f(" + std::string(90, '(') + "n" + std::string(90, ')') + " + 1) }}{% endmacro %}{{ f(0) }}";
  r = render(deep);
  EXPECT_FALSE(r.ok());
  // Big but legitimate input still works with the default limits.
  EXPECT_TRUE(render("{% for i in range(100000) %}{{ i }}{% endfor %}").ok());
}

TEST(Jinja, PythonFloatRepr) {
  using jinja::py_float_repr;
  EXPECT_EQ(py_float_repr(1.0), "1.0");
  EXPECT_EQ(py_float_repr(0.1), "0.1");
  EXPECT_EQ(py_float_repr(1e16), "1e+16");
  EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float_repr(1.5e-5), "1.5e-05");
  EXPECT_EQ(py_float_repr(0.0001), "0.0001");
  EXPECT_EQ(py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(py_float_repr(123456789.123), "123456789.123");
  EXPECT_EQ(py_float_repr(1e100), "1e+100");
  EXPECT_EQ(py_float_repr(2.5e-310), "2.5e-310");
}

TEST(Jinja, TemplateIsReusableAndContextKeepsKeyOrder) {
  auto t = Template::parse("{{ d|tojson }}|{% for k in d %}{{ k }}{% endfor %}");
  ASSERT_TRUE(t.ok());
  for (int i = 0; i < 3; ++i) {
    nlohmann::ordered_json ctx;
    ctx["d"] = nlohmann::ordered_json::object();
    ctx["d"]["zeta"] = i;
    ctx["d"]["alpha"] = "é";
    auto out = t->render(ctx);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "{\"zeta\": " + std::to_string(i) + ", \"alpha\": \"é\"}|zetaalpha");
  }
}

// Damaged templates (spans deleted, duplicated or replaced by template syntax) must give a
// rendering or an error, never a crash or a hang.
TEST(Jinja, MutatedTemplatesNeverCrash) {
  const char* files[] = {"Qwen-Qwen3-0.6B.jinja", "Qwen3-Coder.jinja", "Qwen3.5-4B.jinja"};
  const char* snippets[] = {"{%", "%}", "{{", "}}", "{#",    "|",          "(",      ")",    "[",
                            "]",  "'",  "\"", "-",  "not ",  " for x in ", "endfor", " if ", "else",
                            "~",  "**", ".",  ",",  "loop.", "ns.",        "=",      "\\"};
  nlohmann::ordered_json ctx = context();
  ctx["tools"] = nlohmann::ordered_json::parse(
      R"([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object",
          "properties": {"a": {"type": "string"}}}}}])");
  std::mt19937 rng(3);
  int rendered = 0;
  for (const char* f : files) {
    const std::string base = test::read_text_file(test::fixtures_dir() + "/chat/templates/" + f);
    ASSERT_FALSE(base.empty());
    for (int i = 0; i < 150; ++i) {
      std::string t = base;
      for (int m = 0; m < 3; ++m) {
        const size_t at = rng() % t.size(), len = rng() % 40;
        switch (rng() % 3) {
          case 0:
            t.erase(at, len);
            break;
          case 1:
            t.insert(at, t.substr(at, len));
            break;
          default:
            t.insert(at, snippets[rng() % std::size(snippets)]);
            break;
        }
      }
      auto parsed = Template::parse(t);
      if (!parsed.ok()) continue;
      rendered += parsed->render(ctx).ok();
    }
  }
  EXPECT_GT(rendered, 0);
}

}  // namespace
}  // namespace hylo::chat
