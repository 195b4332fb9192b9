"""The packaged YAML files are the one source of the reference's model configurations: the model modules build
exactly the parameter counts the reference reports from them, whether through `airnets.config.build_model` or the
names `airnets.airnet.AirNet` accepts."""
import pytest
import yaml

from airnets.airnet import AIRNET_CONFIGS, AirNet, count_parameters
from airnets.config import CONFIG_DIR, build_model, load_config

# the reference's counts (shared/spec 2.9 and the AIR-Nets paper's ablations; the baselines' as AIR-Nets reports them)
REFERENCE_COUNTS = {'airnet300': 5_847_225, 'airnet3000': 4_491_409, 'airnet300_lessMemory': 5_005_921,
                    'pointnet++': 3_145_401, 'airnet_interp': 5_521_225, 'pointnet_interp': 2_819_401,
                    'onet': 10_373_889, 'convonet': 1_978_209, 'convonet_grid': 1_068_545, 'ifnet': 2_550_881}

@pytest.mark.parametrize('name', list(REFERENCE_COUNTS))
def test_the_yaml_builds_the_reference_parameter_count(name):
    assert count_parameters(build_model(load_config(CONFIG_DIR/f'{name}.yaml'))) == REFERENCE_COUNTS[name]

@pytest.mark.parametrize('name', list(AIRNET_CONFIGS))
def test_airnet_names_are_the_yaml_model_sections(name):
    d = yaml.safe_load((CONFIG_DIR/f'{name}.yaml').read_text())
    assert AIRNET_CONFIGS[name] == {'encoder': d['encoder'], 'decoder': d['decoder']}
    assert count_parameters(AirNet(name)) == REFERENCE_COUNTS[name]
