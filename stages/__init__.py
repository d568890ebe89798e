"""The stages of the speech service: decode, diarize, transcribe, and the contracts (stage
table, options, settings, artifacts) the gateway and the command line share with them.

Importing the package has no side effects: what the model libraries need settled before
they load is settled by :mod:`stages.compat`, which every module using them imports first.
"""
