"""web_api, APP_TYPE=ui: a Streamlit page in front of model_api (it never loads the model)."""
