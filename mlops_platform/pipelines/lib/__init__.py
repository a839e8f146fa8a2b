"""Pure helpers shared by the pipeline components and the model server (`drift`)."""
