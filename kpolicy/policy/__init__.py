"""`kpolicy check`: a config, command line and sysctls against a hardening policy (rules/policies/).

schema.py reads policies, fragment.py makes one of the kernel's hardening.config, evaluate.py
judges each item on resolve's answer, fix.py finds and proves fixes, output.py writes results.
"""
