"""PyTorch recurrent modules: peephole LSTM / LSTMP and ConvLSTM."""

from lstmforge.nn.convlstm import ConvLSTM as ConvLSTM
from lstmforge.nn.lstm import LSTM as LSTM
