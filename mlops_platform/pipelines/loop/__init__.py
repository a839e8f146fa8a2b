"""The platform's own loop services: what turns alerts, the prediction log and Flagger's
webhooks into pipeline runs and model promotions on the deployed platform."""
