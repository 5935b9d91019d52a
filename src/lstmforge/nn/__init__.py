"""PyTorch recurrent modules: peephole LSTM / LSTMP and ConvLSTM."""

from lstmforge.nn.convlstm import ConvLSTM as ConvLSTM
from lstmforge.nn.forecaster import EncoderForecaster as EncoderForecaster
from lstmforge.nn.forecaster import FCForecaster as FCForecaster
from lstmforge.nn.le_convmn import LEConvMN as LEConvMN
from lstmforge.nn.lstm import LSTM as LSTM
