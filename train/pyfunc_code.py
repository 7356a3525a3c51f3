"""The code MLflow stores in a logged frontwire pyfunc ("models from code") and runs to load it.

It holds no model logic: it names the installed package's `FrontwireModel`, which reads the model dir logged
as the pyfunc's artifact. So the registered model stores no pickle, and loading it runs only this file and
frontwire as installed (a `frontwire` requirement of the model).
"""

import mlflow

from frontwire.train.pyfunc import FrontwireModel

mlflow.models.set_model(FrontwireModel())
