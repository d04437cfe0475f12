"""Line buffering for local jobs: this folder is put on ``PYTHONPATH`` (see ``sitecustomize``)."""
