"""Who we check as: the model and validators (`model`), the config file (`codec`, `store`),
secrets in the OS keyring (`secrets`, or the opt-in encrypted file: `cryptfile`), and Docker's
own logins (`docker_config`).

Headless: nothing here imports textual, and nothing here knows about the monitor or the UI.
This package imports nothing by itself, so using the model does not load the keyring.
"""
