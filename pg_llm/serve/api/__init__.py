"""The HTTP side of the local engine: the FastAPI app, one module per OpenAI API noun
(chat, files, fine_tuning, models), and the request-body parsers they share."""
