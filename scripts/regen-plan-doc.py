#!/usr/bin/env python3
"""Regenerates the `sda plan` and `sda diagram` outputs in
docs/plan-render-diagram.md from the shipped stacks (cmd/sda's
TestDocShowsCurrentOutput checks them). Run from the repository root:
python3 scripts/regen-plan-doc.py"""
import re
import subprocess

DOC = "docs/plan-render-diagram.md"


def output(cmd, stack):
    r = subprocess.run(["go", "run", "./cmd/sda", cmd, "--stack", stack],
                       capture_output=True, text=True)
    return r.stdout


doc = open(DOC).read()
for stack in ("dev", "prod"):
    for cmd, fence in (("plan", "text"), ("diagram", "mermaid")):
        # The block that follows the line naming the command and stack.
        pat = re.compile(r"(`go run \./cmd/sda %s --stack %s`[^\n]*\n\n```%s\n)(.*?)(```)" % (cmd, stack, fence), re.S)
        if not pat.search(doc):
            raise SystemExit("no block for sda %s --stack %s in %s" % (cmd, stack, DOC))
        out = output(cmd, stack)
        doc = pat.sub(lambda m: m.group(1) + out + m.group(3), doc, count=1)
open(DOC, "w").write(doc)
