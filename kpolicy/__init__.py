"""kpolicy: a Kconfig and boot-parameter policy linter for the Linux kernel."""

__version__ = "0.1.0"
