"""The private parts of kconfiglib that kpolicy's reader (parse.py) depends on, listed in one place.

kconfiglib has no extension interface: to read what current kernels write, parse.py subclasses
`kconfiglib.Kconfig`, overrides some of its private methods, calls others, reads the state they
keep, and compares tokens with its private `_T_*` constants. Every such name is below, and the
token tables parse.py matches lines against are built here. tests/kconfig/
test_kconfig_private_surface.py checks that parse.py uses no private name missing from this file,
that kconfiglib still has each one, and that the overridden methods keep their parameters: a
kconfiglib upgrade that moves any of them fails there, by name, before a tree is read wrongly.
"""

from __future__ import annotations

import kconfiglib

KCONFIGLIB_VERSION = (14, 1, 0)  # the release this surface was read from (kconfiglib.VERSION)

# Kconfig methods parse.py overrides, with the parameters it relies on.
OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "_enter_file": ("self", "filename"),  # confine `source` to the tree, count files
    "_open": ("self", "filename", "mode"),  # read every file through kpolicy.textio
    "_fn_val": ("self", "args"),  # bound macro expansion
    "_parse_assignment": ("self", "s"),  # environment variables from a private map
    "_tokenize": ("self", "s"),  # `transitional`, `modules`: rewritten per line
    "_expect_expr_and_eol": ("self",),  # `depends on A if B`
    "_build_dep": ("self",),  # not built: kpolicy never sets a value in kconfiglib
}
# Kconfig methods parse.py calls, and the state it reads while a line is parsed.
CALLED = ("_make_and", "_make_or", "_parse_error", "_expand_whole")
STATE = ("_tokens", "_tokens_i", "_functions", "_include_path")

_T = kconfiglib  # token constants are private module attributes; read, never changed
# Tokens that start a menu entry, and those that end the current one.
ITEM_START = frozenset({_T._T_CONFIG, _T._T_MENUCONFIG, _T._T_CHOICE, _T._T_MENU, _T._T_COMMENT})
ITEM_END = frozenset({_T._T_IF, _T._T_ENDIF, _T._T_ENDMENU, _T._T_ENDCHOICE, _T._T_SOURCE,
                      _T._T_RSOURCE, _T._T_OSOURCE, _T._T_ORSOURCE, _T._T_MAINMENU})
TYPE_TOKENS = frozenset({_T._T_BOOL, _T._T_TRISTATE, _T._T_INT, _T._T_HEX, _T._T_STRING})
# property token -> the kind kpolicy's model records
PROPERTY_KIND = {
    _T._T_DEPENDS: "depends", _T._T_SELECT: "select", _T._T_IMPLY: "imply",
    _T._T_DEFAULT: "default", _T._T_DEF_BOOL: "default", _T._T_DEF_TRISTATE: "default",
    _T._T_DEF_INT: "default", _T._T_DEF_HEX: "default", _T._T_DEF_STRING: "default",
    _T._T_RANGE: "range", _T._T_PROMPT: "prompt",
}
# The other tokens parse.py compares with.
T_CONFIG, T_MENUCONFIG, T_DEPENDS = _T._T_CONFIG, _T._T_MENUCONFIG, _T._T_DEPENDS
T_IF, T_MODULES, T_OPTION = _T._T_IF, _T._T_MODULES, _T._T_OPTION
T_ENV = _T._T_ENV  # `option env=`: refused

# kconfiglib imports the module named by $KCONFIG_FUNCTIONS for extra preprocessor functions
# (default `kconfigfunctions`, looked up on sys.path, which may hold the current directory).
# parse.py names this module, so nothing outside kpolicy is ever imported: it adds none.
FUNCTIONS_MODULE = __name__
functions: dict[str, object] = {}
