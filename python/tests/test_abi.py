# test_abi.py: the ctypes mirrors of the public structs (_lib.py) are checked against
# the library's layout at import (cser_abi_sizeof/offsetof/fieldsize of train.h): a
# mirror that differs in size, field order or field type raises ImportError naming the
# struct and both numbers.
import ctypes
import os
import shutil
import subprocess
import sys

import pytest

from cser import _lib

lib = _lib.lib
c_double, c_int, c_uint64 = ctypes.c_double, ctypes.c_int, ctypes.c_uint64


def mirror(base, fields):
    """A copy of the mirror `base` with other fields (same C name)."""
    return type(base.__name__, (ctypes.Structure,),
                {"_cname_": base._cname_, "_fields_": fields})


def test_every_mirror_is_checked_and_matches():
    structs = {v for v in vars(_lib).values()
               if isinstance(v, type) and issubclass(v, ctypes.Structure)}
    assert structs == set(_lib.MIRRORS)          # a new mirror cannot be forgotten
    _lib.check_abi()
    for m in _lib.MIRRORS:
        assert lib.cser_abi_sizeof(m._cname_.encode()) == ctypes.sizeof(m) > 0


def test_library_answers_for_unknown_names():
    assert lib.cser_abi_sizeof(b"cser_no_such_struct") == 0
    assert lib.cser_abi_sizeof(None) == 0
    assert lib.cser_abi_offsetof(b"cser_netmodel", b"nope") == ctypes.c_size_t(-1).value
    assert lib.cser_abi_offsetof(b"nope", b"latency_s") == ctypes.c_size_t(-1).value
    assert lib.cser_abi_fieldsize(b"cser_netmodel", b"nope") == 0
    assert lib.cser_abi_offsetof(b"cser_netmodel", b"latency_s") == 8
    assert lib.cser_abi_fieldsize(b"cser_optim_config", b"c1") == 96   # CSER_SPEC_MAX


def test_missing_field_is_reported_with_both_sizes():
    """The bug this check exists for: cser_comm_stats grew wait_s, the mirror did not."""
    old = mirror(_lib.CommStats, [f for f in _lib.CommStats._fields_ if f[0] != "wait_s"])
    n = lib.cser_abi_sizeof(b"cser_comm_stats")
    with pytest.raises(ImportError) as e:
        _lib.check_abi([old])
    msg = str(e.value)
    assert "sizeof(cser_comm_stats) is %d bytes in the library, %d in the mirror " \
        "CommStats" % (n, n - 8) in msg, msg


def test_reordered_fields_of_equal_size_are_reported():
    f = _lib.NetModel._fields_
    swapped = mirror(_lib.NetModel, [f[1], f[0]] + f[2:])
    assert ctypes.sizeof(swapped) == ctypes.sizeof(_lib.NetModel)
    with pytest.raises(ImportError, match=r"cser_netmodel\.latency_s is at offset 8 "
                       r"with 8 bytes in the library, at offset 0"):
        _lib.check_abi([swapped])


def test_wider_field_hidden_by_padding_is_reported():
    """nesterov int -> int64 keeps every offset and the size (padding before
    weight_decay absorbs it): only the field's size shows it."""
    fields = [(n, ctypes.c_int64 if n == "nesterov" else t)
              for n, t in _lib.OptimConfig._fields_]
    wide = mirror(_lib.OptimConfig, fields)
    assert ctypes.sizeof(wide) == ctypes.sizeof(_lib.OptimConfig)
    with pytest.raises(ImportError, match=r"cser_optim_config\.nesterov .* 4 bytes in "
                       r"the library, .* 8 bytes in the mirror"):
        _lib.check_abi([wide])


def test_renamed_field_and_unknown_struct_are_reported():
    f = _lib.Run._fields_
    renamed = mirror(_lib.Run, [("offset", f[0][1]), f[1]])
    with pytest.raises(ImportError, match=r"cser_run\.offset: no such field"):
        _lib.check_abi([renamed])
    ghost = type("Ghost", (ctypes.Structure,), {"_cname_": "cser_ghost",
                                                "_fields_": [("x", c_int)]})
    with pytest.raises(ImportError, match="does not know the struct cser_ghost"):
        _lib.check_abi([ghost])


def test_import_fails_with_a_stale_mirror(tmp_path):
    """End to end: `import cser` with a package whose CommStats lacks wait_s (the
    mirror as it was before the header changed) raises ImportError, no segfault."""
    pkg = os.path.dirname(os.path.abspath(_lib.__file__))
    shutil.copytree(pkg, tmp_path / "cser",
                    ignore=shutil.ignore_patterns("__pycache__"))
    src = (tmp_path / "cser" / "_lib.py").read_text()
    stale = src.replace(', ("wait_s", c_double)', "")
    assert stale != src
    (tmp_path / "cser" / "_lib.py").write_text(stale)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), CSER_LIBRARY=_lib.path,
               PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-c", "import cser"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    n = lib.cser_abi_sizeof(b"cser_comm_stats")
    assert "ImportError: cser: sizeof(cser_comm_stats) is %d bytes in the library, %d " \
        "in the mirror CommStats" % (n, n - 8) in r.stderr, r.stderr
