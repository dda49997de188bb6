#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""
The YNL spec (Documentation/netlink/ftvm.yaml) and the uapi header
(kmod/uapi/ftvm.h) describe the same family: every operation,
attribute, enum entry and constant of the spec exists in the header
with the value the spec implies, and the header has nothing the spec
lacks.  The values are read by compiling the header, not by parsing it.
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

top = os.environ.get("FTVM_TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
spec = yaml.safe_load(open(os.path.join(top, "Documentation/netlink/ftvm.yaml")))
header = os.path.join(top, "kmod/uapi/ftvm.h")

P = spec["name"].upper()


def c(name):
    return name.upper().replace("-", "_")


expect = {f"{P}_GENL_VERSION": spec["version"]}   # C name -> value
for d in spec.get("definitions", []):
    if d["type"] == "const":
        expect[f"{P}_{c(d['name'])}"] = d["value"]
    elif d["type"] == "enum":
        prefix = c(d["name-prefix"]) if "name-prefix" in d else {
            "vm-state": f"{P}_VM_STATE_", "fail-reason": f"{P}_FAIL_"}.get(
            d["name"], f"{P}_{c(d['name'])}_")
        v = d.get("value-start", 0)
        for e in d["entries"]:
            name = e["name"] if isinstance(e, dict) else e
            expect[prefix + c(name)] = v
            v += 1
for s in spec["attribute-sets"]:
    prefix = f"{P}_A_" if s["name"] == spec["name"] else f"{P}_A_{c(s['name'])}_"
    v = 1
    for a in s["attributes"]:
        v = a.get("value", v)
        expect[prefix + c(a["name"])] = v
        v += 1
v = 1
for op in spec["operations"]["list"]:
    v = op.get("value", v)
    expect[f"{P}_CMD_{c(op['name'])}"] = v
    v += 1

# Every enumerator and #define of the header, with its value.
text = open(header).read()
names = set(re.findall(r"^\s*(" + P + r"_[A-Z0-9_]+)\s*[,=]", text, re.M))
names |= set(re.findall(r"^#define\s+(" + P + r"_[A-Z0-9_]+)\s+\d", text, re.M))
names = {n for n in names if not re.search(r"(^|_)(UNSPEC|MAX)$", n)
         and not n.startswith("__")}
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "v.c")
    with open(src, "w") as f:
        f.write(f'#include <stdio.h>\n#include "{header}"\nint main(void){{\n')
        for n in sorted(names | set(expect)):
            f.write(f'#ifdef {n}\nprintf("{n} %lld\\n",(long long)({n}));\n#else\n'
                    f'printf("{n} %lld\\n",(long long)({n}));\n#endif\n')
        f.write("return 0;}\n")
    r = subprocess.run(["cc", "-w", "-o", os.path.join(d, "v"), src],
                       capture_output=True, text=True)
    missing = set()
    if r.returncode:
        missing = set(re.findall(r"'(" + P + r"_[A-Z0-9_]+)' undeclared", r.stderr))
        with open(src) as f:
            body = f.read()
        for n in missing:
            body = body.replace(f'#ifdef {n}\nprintf("{n} %lld\\n",(long long)({n}));\n#else\n'
                                f'printf("{n} %lld\\n",(long long)({n}));\n#endif\n', "")
        open(src, "w").write(body)
        subprocess.run(["cc", "-w", "-o", os.path.join(d, "v"), src], check=True)
    out = subprocess.run([os.path.join(d, "v")], capture_output=True, text=True,
                         check=True).stdout
got = {l.split()[0]: int(l.split()[1]) for l in out.splitlines()}

tests = []
for n, v in sorted(expect.items()):
    if n in missing:
        tests.append((False, f"{n} of the spec is in the header"))
    else:
        tests.append((got[n] == v, f"{n} = {v} in the header (header says {got[n]})"))
for n in sorted(names - set(expect)):
    tests.append((False, f"{n} of the header is in the spec"))

print("TAP version 13")
print(f"1..{len(tests)}")
fails = 0
for i, (ok, desc) in enumerate(tests, 1):
    print(f"{'ok' if ok else 'not ok'} {i} {desc}")
    fails += not ok
sys.exit(1 if fails else 0)
