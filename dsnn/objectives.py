"""The keys of what `train(cfg)` (dsnn/training.py) returns: the contract with sweepers.

A sweeper names its objectives by these keys (`hydra.sweeper.objectives=[val/error,
energy/model_uj_per_image]`); evaluations read the same keys from the runs they start.
All values are floats; lower is better for the error, energy and emission keys.

    val/acc, val/error, val/loss           final model, one pass over the validation split
    emissions/train_g, emissions/inference_g, emissions/total_g   CodeCarbon, gCO2eq
    energy/train_kwh, energy/inference_kwh, energy/total_kwh      CodeCarbon, kWh
    time/train_s, time/inference_s         wall time of the two measured phases
        (training: cumulative over every stage of a continued run, resume_from=..., so they
        mean the same as for an uninterrupted run of as many epochs)
    emissions/stage_train_g, emissions/stage_total_g, energy/stage_train_kwh,
    time/stage_train_s                     this run's own share (its training, and training
                                           + inference): the search cost of a sweep trial
    train/epochs, train/stage_epochs       epochs the model has trained; of them, this run
    model/shift_layers                     number of weight layers converted to shifts
    energy/model_uj_per_image              analytic energy of one inference, µJ (op counts x
                                           Horowitz 45 nm energies, dsnn/energy/analytic.py)
    test/acc, test/error                   only with test=true
"""

VAL_ACC = "val/acc"
VAL_ERROR = "val/error"
VAL_LOSS = "val/loss"
EMISSIONS_TRAIN_G = "emissions/train_g"
EMISSIONS_INFERENCE_G = "emissions/inference_g"
EMISSIONS_TOTAL_G = "emissions/total_g"
ENERGY_TRAIN_KWH = "energy/train_kwh"
ENERGY_INFERENCE_KWH = "energy/inference_kwh"
ENERGY_TOTAL_KWH = "energy/total_kwh"
TIME_TRAIN_S = "time/train_s"
TIME_INFERENCE_S = "time/inference_s"
EMISSIONS_STAGE_TRAIN_G = "emissions/stage_train_g"
EMISSIONS_STAGE_TOTAL_G = "emissions/stage_total_g"
ENERGY_STAGE_TRAIN_KWH = "energy/stage_train_kwh"
TIME_STAGE_TRAIN_S = "time/stage_train_s"
EPOCHS_TRAINED = "train/epochs"
EPOCHS_STAGE = "train/stage_epochs"
SHIFT_LAYERS = "model/shift_layers"
MODEL_ENERGY_UJ = "energy/model_uj_per_image"
TEST_ACC = "test/acc"
TEST_ERROR = "test/error"

# Every key of a run with test=false; test=true adds TEST_KEYS.
TRAIN_KEYS = (
    VAL_ACC,
    VAL_ERROR,
    VAL_LOSS,
    EMISSIONS_TRAIN_G,
    EMISSIONS_INFERENCE_G,
    EMISSIONS_TOTAL_G,
    ENERGY_TRAIN_KWH,
    ENERGY_INFERENCE_KWH,
    ENERGY_TOTAL_KWH,
    TIME_TRAIN_S,
    TIME_INFERENCE_S,
    EMISSIONS_STAGE_TRAIN_G,
    EMISSIONS_STAGE_TOTAL_G,
    ENERGY_STAGE_TRAIN_KWH,
    TIME_STAGE_TRAIN_S,
    EPOCHS_TRAINED,
    EPOCHS_STAGE,
    SHIFT_LAYERS,
    MODEL_ENERGY_UJ,
)
TEST_KEYS = (TEST_ACC, TEST_ERROR)
