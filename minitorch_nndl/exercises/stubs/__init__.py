"""The exercise stubs that ``python3 -m minitorch_nndl.exercises start DIR`` copies into DIR.

They are templates, not modules to import from here: each one imports its siblings by
their plain names (``from unbroadcast import unbroadcast``), which works in the student's
folder, where the grader loads them.
"""
