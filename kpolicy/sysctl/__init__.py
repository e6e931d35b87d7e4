"""Security sysctls: their values at boot (config, boot parameters, `sysctl.*`) and after the
distribution's sysctl.d, each with the reason it has that value.

rules/sysctls/security.toml says where each one's boot value comes from (spec.py reads it);
write.py is the kernel's proc handlers (which writes take, which are refused); boot.py walks
the boot; sysctld.py reads sysctl -a dumps, sysctl.conf files and sysctl.d directories in
systemd-sysctl's order and applies them on top.
"""
