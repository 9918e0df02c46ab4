"""The web page: a Streamlit skin over nstcli.api, started by `nst ui` (needs the `ui` extra).

- server.py starts Streamlit and hands it the config chosen on the command line;
- app.py is the page itself (run by Streamlit, never imported);
- inputs.py turns uploads into checked image files, and knows the bundled examples;
- live.py shows a run's progress and current image on the page while it runs.
"""
