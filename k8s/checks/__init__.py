"""The checks k8s/check.py runs on each rendered overlay: one module per kind of check.

Every check takes the rendered objects and returns one line per problem (an empty list
when all is well), so each can be tested on a deliberately broken copy of an overlay.
"""
